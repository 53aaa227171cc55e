/* The store contract (src/store/store.h), tested through the hl_store_* functions only.
 *
 * Every contract case is a function of a struct ctx holding an open store. main() runs all of
 * them against a fresh SQLite file per case in a mkdtemp directory and, when HOOKLINE_TEST_PG_URL
 * is set, all of them again against that PostgreSQL database. A PostgreSQL database may be shared
 * with other runs, so every case makes its own apps with random uids, only looks at rows of those
 * apps, and keeps only the claimed jobs of webhooks it made (struct ctx.hooks). Exact global
 * figures (next_due, "nothing else was notified") are checked only on a private database. Claims
 * are global, though: rows other runs left behind are claimed (leased) and dropped, so runs
 * may follow one another on one database, but not overlap with another run or a live node.
 * scripts/with-postgres.sh gives a throwaway server:
 *   scripts/with-postgres.sh build/store_test
 * HOOKLINE_TEST_BACKEND=postgres (ctest's unit-pg/store_test) runs the PostgreSQL half alone.
 * A backend that cannot be opened (no URL, server unreachable) makes its cases skip and the
 * process exit 77, ctest's "skipped", never 0; under HL_REQUIRE_ALL=1 (make test) they fail.
 *
 * Deliveries are observed through claims (due, leased, parked, gone) and through delivery_get
 * (status and attempts). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/events.h"
#include "common/ids.h"
#include "events/operational.h"
#include "store/prune.h"
#include "store/store.h"
#include "need.h"

#include <libpq-fe.h>
#include <sqlite3.h>

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

#define EV(t) (1u << (t))
#define MAX_HOOKS 64
#define HOOK_URL "https://receiver.example/hooks/in?x=1&y=%C3%A9"

/* ---- backends ---- */

struct backend {
    const char *name;
    /* Other tests, runs and nodes may hold rows in the same database: global figures are not
     * exact, and leases are other nodes' work that release_leases leaves alone. */
    int shared;
    /* Writes the URL a case opens into out. */
    void (*url)(char *out, size_t cap);
};

static char tmpdir[PATH_MAX];
static unsigned sqlite_seq;

/* The default backend: a fresh SQLite file in the temporary directory for every case. */
static void sqlite_url(char *out, size_t cap)
{
    snprintf(out, cap, "%s/store-%u.db", tmpdir, ++sqlite_seq);
}

/* The PostgreSQL database named by HOOKLINE_TEST_PG_URL, shared by every case. */
static void pg_url(char *out, size_t cap)
{
    const char *u = getenv("HOOKLINE_TEST_PG_URL");
    snprintf(out, cap, "%s", u ? u : "");
}

static const struct backend SQLITE = {"sqlite", 0, sqlite_url};
static const struct backend POSTGRES = {"postgres", 1, pg_url};

/* ---- what every case gets ---- */

struct contract;

struct ctx {
    const struct backend *be;
    const struct contract *t;
    char url[1024];
    struct hl_store *st;
    char unavailable[512];    /* why st is NULL */
    int64_t hooks[MAX_HOOKS]; /* webhooks this case made: claims keep only their jobs */
    size_t nhooks;
};

struct contract {
    const char *name;
    void (*fn)(struct ctx *c);
};

/* ---- helpers ---- */

static void new_uid(const char *prefix, char *out)
{
    assert_int_equal(hl_id_new(prefix, 12, out, HL_ID_MAX), HL_OK);
}

static void make_app(struct ctx *c, struct hl_app *a)
{
    char uid[HL_ID_MAX];
    new_uid("app-", uid);
    int64_t t0 = hl_now_ms();
    assert_int_equal(hl_store_app_create(c->st, uid, "test app", a), HL_OK);
    assert_true(a->id > 0);
    assert_string_equal(a->uid, uid);
    assert_string_equal(a->name, "test app");
    assert_true(a->created_at >= t0 && a->created_at <= hl_now_ms());
}

struct hook {
    int64_t id;
    char uid[HL_ID_MAX];
    char secret[HL_SECRET_SIZE];
};

static void make_hook(struct ctx *c, int64_t app_id, unsigned entities, unsigned event_types,
                      int active, struct hook *h)
{
    char url[] = HOOK_URL;
    struct hl_webhook w = {0};
    new_uid("webhook-", w.uid);
    w.app_id = app_id;
    w.url = url;
    w.entities = entities;
    w.event_types = event_types;
    w.active = active;
    assert_int_equal(hl_secret_new(w.secret, sizeof(w.secret)), HL_OK);
    w.created_at = w.updated_at = hl_now_ms();
    assert_int_equal(hl_store_webhook_create(c->st, &w, 0), HL_OK);
    assert_true(w.id > 0);
    assert_true(c->nhooks < MAX_HOOKS);
    c->hooks[c->nhooks++] = w.id;
    h->id = w.id;
    memcpy(h->uid, w.uid, sizeof(h->uid));
    memcpy(h->secret, w.secret, sizeof(h->secret));
}

static void set_active(struct ctx *c, int64_t app_id, const struct hook *h, int active, int64_t now)
{
    struct hl_webhook_patch p = {.set = HL_WP_ACTIVE, .active = active};
    assert_int_equal(hl_store_webhook_update(c->st, app_id, h->uid, &p, now, NULL), HL_OK);
}

/* An event ready to commit: its strings live in the struct. */
struct ev {
    struct hl_event e;
    char tenant[64];
    char payload[300];
};

static void ev_init(struct ev *v, int64_t app_id, int type, const char *tenant,
                    const char *resource_uid, int64_t created_at)
{
    memset(v, 0, sizeof(*v));
    new_uid("evt_", v->e.uid);
    v->e.type = type;
    v->e.app_id = app_id;
    snprintf(v->tenant, sizeof(v->tenant), "%s", tenant);
    v->e.tenant = v->tenant;
    snprintf(v->e.resource_uid, sizeof(v->e.resource_uid), "%s", resource_uid);
    v->e.created_at = created_at;
    /* the exact bytes must come back: escapes, non-ASCII and a key order jansson would not keep */
    int n = snprintf(v->payload, sizeof(v->payload),
                     "{\"eventId\":\"%s\",\"event\":\"%s\",\"timestamp\":%lld,\"data\":{\"z\":1,"
                     "\"a\":\"caf\xc3\xa9 \\\"q\\\" \\u0001\"}}",
                     v->e.uid, hl_event_name(type), (long long)created_at);
    assert_true(n > 0 && (size_t)n < sizeof(v->payload));
    v->e.payload = v->payload;
    v->e.payload_len = (size_t)n;
}

/* Commits one event without a resource write; *made gets the deliveries added. */
static int publish_ev(struct ctx *c, const struct ev *v, int64_t only_webhook, int64_t *made)
{
    struct hl_change ch = {.op = HL_OP_NONE, .ev = &v->e, .only_webhook = only_webhook};
    return hl_store_commit(c->st, &ch, 1, NULL, made);
}

/* Publishes an event of type now and returns how many deliveries it made. */
static int64_t publish(struct ctx *c, int64_t app_id, int type, struct ev *v)
{
    ev_init(v, app_id, type, "tenant-1", "agent-x", hl_now_ms());
    int64_t made = 0;
    assert_int_equal(publish_ev(c, v, 0, &made), HL_OK);
    return made;
}

/* A resource ready to commit. */
struct res {
    struct hl_resource r;
    char tenant[64];
    char body[256];
};

static void res_init(struct res *x, int64_t app_id, enum hl_entity kind, const char *uid,
                     const char *parent, const char *tenant, const char *body, int64_t at)
{
    char keep[HL_ID_MAX] = ""; /* uid may point into *x */
    if (uid)
        snprintf(keep, sizeof(keep), "%s", uid);
    memset(x, 0, sizeof(*x));
    x->r.kind = kind;
    x->r.app_id = app_id;
    if (uid)
        memcpy(x->r.uid, keep, sizeof(x->r.uid));
    else
        new_uid(kind == HL_ENT_AGENT     ? "agent-"
                : kind == HL_ENT_CONTEXT ? "ctx-"
                                         : "file-",
                x->r.uid);
    snprintf(x->r.parent_uid, sizeof(x->r.parent_uid), "%s", parent ? parent : "");
    snprintf(x->tenant, sizeof(x->tenant), "%s", tenant);
    snprintf(x->body, sizeof(x->body), "%s", body);
    x->r.tenant = x->tenant;
    x->r.body = x->body;
    x->r.body_len = strlen(x->body);
    x->r.created_at = x->r.updated_at = at;
}

/* Commits one resource change with its event. */
static int change(struct ctx *c, enum hl_op op, const struct res *x, int64_t expect_version,
                  struct ev *v, int64_t *made)
{
    ev_init(v, x->r.app_id, hl_event_for(x->r.kind, op), x->r.tenant, x->r.uid, hl_now_ms());
    struct hl_change ch = {.op = op, .res = &x->r, .expect_version = expect_version, .ev = &v->e};
    return hl_store_commit(c->st, &ch, 1, NULL, made);
}

static void sha256(const char *s, uint8_t out[32])
{
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(s, strlen(s), out, &n, EVP_sha256(), NULL), 1);
    assert_int_equal(n, 32);
}

struct jobs {
    struct hl_job *v;
    size_t n, cap;
};

static void jobs_free(struct jobs *j)
{
    for (size_t i = 0; i < j->n; i++)
        hl_job_clear(&j->v[i]);
    free(j->v);
    j->v = NULL;
    j->n = j->cap = 0;
}

/* From here on, claims keep only the jobs of webhooks made after this call. */
static void forget_hooks(struct ctx *c)
{
    c->nhooks = 0;
}

static int is_mine(const struct ctx *c, int64_t webhook_id)
{
    for (size_t i = 0; i < c->nhooks; i++)
        if (c->hooks[i] == webhook_id)
            return 1;
    return 0;
}

/* One claim through cl; appends the jobs of this case's webhooks to *out, in the order they
 * came. Returns how many jobs it claimed in all. */
static size_t claim_keep(struct ctx *c, const struct hl_claim *cl, struct jobs *out)
{
    struct hl_job *v = NULL;
    size_t n = 0;
    assert_int_equal(hl_store_claim(c->st, cl, &v, &n), HL_OK);
    for (size_t i = 0; i < n; i++) {
        if (!is_mine(c, v[i].webhook_id)) {
            hl_job_clear(&v[i]);
            continue;
        }
        if (out->n == out->cap) {
            out->cap = out->cap ? 2 * out->cap : 8;
            out->v = realloc(out->v, out->cap * sizeof(*out->v));
            assert_non_null(out->v);
        }
        out->v[out->n++] = v[i];
    }
    free(v);
    return n;
}

/* Claims through cl until a claim returns none, keeping this case's jobs in *out (which it frees
 * first). */
static void claim_all(struct ctx *c, const struct hl_claim *cl, struct jobs *out)
{
    assert_true(cl->lease_until > cl->now); /* or the same rows would come back forever */
    jobs_free(out);
    /* a store that hands out leased rows again would keep this going: bound it */
    for (int round = 0; claim_keep(c, cl, out) > 0; round++)
        if (round == 10000)
            fail_msg("claims keep returning rows: are leases kept?");
}

/* Claims at now (batch by batch, each leased until lease_until, through the cursor fresh when not
 * NULL) until a claim returns none, and keeps the jobs of this case's webhooks in *out (which it
 * frees first), in the order they came. */
static void claim_with(struct ctx *c, int64_t now, int64_t lease_until, const int64_t *skip,
                       size_t nskip, struct hl_claim_cursor *fresh, struct jobs *out)
{
    struct hl_claim cl = {.now = now,
                          .lease_until = lease_until,
                          .max = 64,
                          .skip = skip,
                          .nskip = nskip,
                          .fresh = fresh};
    claim_all(c, &cl, out);
}

/* Claims every due delivery at now, webhook by webhook; see claim_with. */
static void claim_mine(struct ctx *c, int64_t now, int64_t lease_until, const int64_t *skip,
                       size_t nskip, struct jobs *out)
{
    claim_with(c, now, lease_until, skip, nskip, NULL, out);
}

/* The job of a webhook in j, or NULL. */
static const struct hl_job *job_of(const struct jobs *j, int64_t webhook_id)
{
    const struct hl_job *found = NULL;
    for (size_t i = 0; i < j->n; i++) {
        if (j->v[i].webhook_id == webhook_id) {
            assert_null(found); /* one delivery per webhook and event */
            found = &j->v[i];
        }
    }
    return found;
}

/* Checks a delivery's status and attempts (attempts < 0: not checked). */
static void expect_delivery(struct ctx *c, int64_t app_id, int64_t id, int status, int attempts)
{
    struct hl_delivery d;
    size_t n = 0;
    memset(&d, 0, sizeof(d));
    assert_int_equal(hl_store_delivery_get(c->st, app_id, id, &d, NULL, &n), HL_OK);
    assert_int_equal(d.id, id);
    assert_int_equal((int)d.status, status);
    if (attempts >= 0)
        assert_int_equal(d.attempts, attempts);
    hl_delivery_clear(&d);
}

static void get_hook(struct ctx *c, int64_t app_id, const struct hook *h, struct hl_webhook *w)
{
    assert_int_equal(hl_store_webhook_get(c->st, app_id, h->uid, w), HL_OK);
    assert_int_equal(w->id, h->id);
}

/* Whether the event log of app_id holds an event with this uid. */
static int event_logged(struct ctx *c, int64_t app_id, const char *uid)
{
    struct hl_event_filter f = {.type = -1};
    struct hl_event *v = NULL;
    size_t n = 0;
    int found = 0;
    assert_int_equal(hl_store_event_list(c->st, app_id, &f, 0, 1000, &v, &n), HL_OK);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].uid, uid) == 0)
            found = 1;
        hl_event_clear(&v[i]);
    }
    free(v);
    return found;
}

static int popcount(unsigned v)
{
    return __builtin_popcount(v);
}

/* ---- apps and keys ---- */

static void c_apps(struct ctx *c)
{
    struct hl_app a, b, got;
    make_app(c, &a);
    assert_int_equal(hl_store_app_get(c->st, a.uid, &got), HL_OK);
    assert_int_equal(got.id, a.id);
    assert_string_equal(got.uid, a.uid);
    assert_string_equal(got.name, a.name);
    assert_int_equal(got.created_at, a.created_at);

    /* a uid is taken once */
    struct hl_app dup;
    assert_int_equal(hl_store_app_create(c->st, a.uid, "again", &dup), HL_ECONFLICT);
    assert_int_equal(hl_store_app_get(c->st, a.uid, &got), HL_OK);
    assert_string_equal(got.name, "test app");

    char none[HL_ID_MAX];
    new_uid("app-", none);
    assert_int_equal(hl_store_app_get(c->st, none, &got), HL_ENOTFOUND);

    /* names keep their bytes */
    char uid[HL_ID_MAX];
    new_uid("app-", uid);
    const char *name = "Caf\xc3\xa9 \"quoted\" \xe2\x98\x95 ' ; DROP TABLE apps; --";
    assert_int_equal(hl_store_app_create(c->st, uid, name, &b), HL_OK);
    assert_int_equal(hl_store_app_get(c->st, uid, &got), HL_OK);
    assert_string_equal(got.name, name);

    /* the list holds both, oldest first */
    struct hl_app *list = NULL;
    size_t n = 0, ia = SIZE_MAX, ib = SIZE_MAX;
    assert_int_equal(hl_store_app_list(c->st, &list, &n), HL_OK);
    for (size_t i = 0; i < n; i++) {
        if (list[i].id == a.id) {
            assert_int_equal(ia, SIZE_MAX);
            ia = i;
            assert_string_equal(list[i].uid, a.uid);
        } else if (list[i].id == b.id) {
            assert_int_equal(ib, SIZE_MAX);
            ib = i;
            assert_string_equal(list[i].name, name);
        }
    }
    assert_true(ia != SIZE_MAX && ib != SIZE_MAX);
    assert_true(ia < ib);
    free(list);
}

static void c_keys(struct ctx *c)
{
    struct hl_app a, b, got;
    make_app(c, &a);
    make_app(c, &b);
    char key_a[HL_ID_MAX], key_b[HL_ID_MAX], uid_a[HL_ID_MAX], uid_b[HL_ID_MAX];
    uint8_t ha[32], hb[32], hx[32];
    new_uid("hk_", key_a);
    new_uid("hk_", key_b);
    new_uid("key_", uid_a);
    new_uid("key_", uid_b);
    sha256(key_a, ha);
    sha256(key_b, hb);
    assert_int_equal(hl_store_key_create(c->st, a.id, uid_a, ha, "hk_abcd"), HL_OK);
    assert_int_equal(hl_store_key_create(c->st, b.id, uid_b, hb, "hk_efgh"), HL_OK);

    assert_int_equal(hl_store_key_lookup(c->st, ha, &got), HL_OK);
    assert_int_equal(got.id, a.id);
    assert_string_equal(got.uid, a.uid);
    assert_string_equal(got.name, a.name);
    assert_int_equal(hl_store_key_lookup(c->st, hb, &got), HL_OK);
    assert_int_equal(got.id, b.id);

    /* unknown hashes, including one a bit away from a real one */
    sha256("not a key anyone was given", hx);
    assert_int_equal(hl_store_key_lookup(c->st, hx, &got), HL_ENOTFOUND);
    memcpy(hx, ha, 32);
    hx[31] ^= 1;
    assert_int_equal(hl_store_key_lookup(c->st, hx, &got), HL_ENOTFOUND);
    memset(hx, 0, 32);
    assert_int_equal(hl_store_key_lookup(c->st, hx, &got), HL_ENOTFOUND);

    /* a hash and a key uid are taken once */
    char uid_c[HL_ID_MAX];
    new_uid("key_", uid_c);
    assert_int_equal(hl_store_key_create(c->st, b.id, uid_c, ha, "hk_dup"), HL_ECONFLICT);
    sha256(uid_c, hx);
    assert_int_equal(hl_store_key_create(c->st, b.id, uid_a, hx, "hk_dup"), HL_ECONFLICT);

    struct hl_api_key *keys = NULL;
    size_t n = 0;
    assert_int_equal(hl_store_key_list(c->st, a.id, &keys, &n), HL_OK);
    assert_int_equal(n, 1);
    assert_string_equal(keys[0].uid, uid_a);
    assert_int_equal(keys[0].app_id, a.id);
    assert_string_equal(keys[0].app_uid, a.uid);
    assert_string_equal(keys[0].prefix, "hk_abcd");
    assert_true(keys[0].created_at > 0);
    assert_int_equal(keys[0].revoked_at, 0);
    free(keys);

    /* revoked: no longer found; the other app's key still is */
    assert_int_equal(hl_store_key_revoke(c->st, uid_a), HL_OK);
    assert_int_equal(hl_store_key_lookup(c->st, ha, &got), HL_ENOTFOUND);
    assert_int_equal(hl_store_key_lookup(c->st, hb, &got), HL_OK);
    assert_int_equal(got.id, b.id);
    assert_int_equal(hl_store_key_revoke(c->st, uid_a), HL_ENOTFOUND);
    assert_int_equal(hl_store_key_revoke(c->st, uid_c), HL_ENOTFOUND);

    /* every app's keys with app_id 0: both of ours are there, a's revoked */
    assert_int_equal(hl_store_key_list(c->st, 0, &keys, &n), HL_OK);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(keys[i].uid, uid_a) == 0) {
            assert_true(keys[i].revoked_at > 0);
            seen |= 1;
        } else if (strcmp(keys[i].uid, uid_b) == 0) {
            assert_int_equal(keys[i].revoked_at, 0);
            assert_string_equal(keys[i].app_uid, b.uid);
            seen |= 2;
        }
    }
    assert_int_equal(seen, 3);
    free(keys);
}

/* ---- webhooks ---- */

static void c_webhook_create_get(struct ctx *c)
{
    struct hl_app a, b;
    make_app(c, &a);
    make_app(c, &b);
    char url[] = "https://example.com/h\xc3\xa9/in?a=1&b=%20";
    char desc[] = "Primary \"hook\" \xe2\x98\x95";
    struct hl_webhook w = {0}, got;
    new_uid("webhook-", w.uid);
    w.app_id = a.id;
    w.url = url;
    w.description = desc;
    w.entities = HL_ENT_AGENT | HL_ENT_CONTEXT;
    w.event_types = EV(HL_EV_AGENT_CREATED) | EV(HL_EV_CONTEXT_DELETED);
    w.active = 1;
    assert_int_equal(hl_secret_new(w.secret, sizeof(w.secret)), HL_OK);
    w.created_at = w.updated_at = 1737383722123;
    assert_int_equal(hl_store_webhook_create(c->st, &w, 0), HL_OK);
    assert_true(w.id > 0);

    assert_int_equal(hl_store_webhook_get(c->st, a.id, w.uid, &got), HL_OK);
    assert_int_equal(got.id, w.id);
    assert_string_equal(got.uid, w.uid);
    assert_int_equal(got.app_id, a.id);
    assert_string_equal(got.url, url);
    assert_non_null(got.description);
    assert_string_equal(got.description, desc);
    assert_int_equal(got.entities, w.entities);
    assert_int_equal(got.event_types, w.event_types);
    assert_int_equal(got.active, 1);
    assert_string_equal(got.secret, w.secret);
    assert_int_equal(got.prev.n, 0);
    assert_int_equal(got.deleted_at, 0);
    assert_int_equal(got.created_at, 1737383722123);
    assert_int_equal(got.updated_at, 1737383722123);
    assert_int_equal(got.last_triggered_at, 0);
    assert_int_equal(got.last_success_at, 0);
    assert_int_equal(got.last_failure_at, 0);
    assert_int_equal(got.failing_since, 0);
    assert_int_equal(got.disabled_at, 0);
    assert_null(got.disabled_reason);
    hl_webhook_clear(&got);
    assert_null(got.url);

    /* not visible to another app, and unknown uids are not found */
    assert_int_equal(hl_store_webhook_get(c->st, b.id, w.uid, &got), HL_ENOTFOUND);
    char none[HL_ID_MAX];
    new_uid("webhook-", none);
    assert_int_equal(hl_store_webhook_get(c->st, a.id, none, &got), HL_ENOTFOUND);

    /* a uid is taken once, even by another app */
    struct hl_webhook dup = w;
    dup.app_id = b.id;
    assert_int_equal(hl_store_webhook_create(c->st, &dup, 0), HL_ECONFLICT);

    /* no description, inactive */
    struct hl_webhook w2 = w;
    new_uid("webhook-", w2.uid);
    w2.description = NULL;
    w2.active = 0;
    w2.event_types = 0;
    assert_int_equal(hl_store_webhook_create(c->st, &w2, 0), HL_OK);
    assert_true(w2.id > w.id);
    assert_int_equal(hl_store_webhook_get(c->st, a.id, w2.uid, &got), HL_OK);
    assert_null(got.description);
    assert_int_equal(got.active, 0);
    assert_int_equal(got.event_types, 0);
    hl_webhook_clear(&got);
}

static void c_webhook_list(struct ctx *c)
{
    struct hl_app a, b;
    make_app(c, &a);
    make_app(c, &b);
    struct hook h[7], hb;
    for (int i = 0; i < 7; i++)
        make_hook(c, a.id, HL_ENT_ALL, 0, i % 2, &h[i]);
    make_hook(c, b.id, HL_ENT_ALL, 0, 1, &hb);
    assert_int_equal(hl_store_webhook_delete(c->st, a.id, h[3].uid, hl_now_ms()), HL_OK);

    /* pages of 2: 2, 2, 2, then nothing; ids ascending; the deleted one and b's are absent */
    static const int want[] = {0, 1, 2, 4, 5, 6};
    int64_t after = 0;
    size_t got = 0;
    for (int page = 0; page < 4; page++) {
        struct hl_webhook *v = NULL;
        size_t n = 0;
        assert_int_equal(hl_store_webhook_list(c->st, a.id, after, 2, &v, &n), HL_OK);
        assert_int_equal(n, page < 3 ? 2 : 0);
        for (size_t i = 0; i < n; i++) {
            assert_true(got < 6);
            const struct hook *e = &h[want[got++]];
            assert_int_equal(v[i].id, e->id);
            assert_string_equal(v[i].uid, e->uid);
            assert_string_equal(v[i].secret, e->secret);
            assert_string_equal(v[i].url, HOOK_URL);
            assert_int_equal(v[i].app_id, a.id);
            assert_int_equal(v[i].active, want[got - 1] % 2);
            assert_true(v[i].id > after);
            after = v[i].id;
            hl_webhook_clear(&v[i]);
        }
        free(v);
    }
    assert_int_equal(got, 6);

    /* one big page; starting after an id skips up to it */
    struct hl_webhook *v = NULL;
    size_t n = 0;
    assert_int_equal(hl_store_webhook_list(c->st, a.id, 0, 100, &v, &n), HL_OK);
    assert_int_equal(n, 6);
    for (size_t i = 0; i < n; i++)
        hl_webhook_clear(&v[i]);
    free(v);
    assert_int_equal(hl_store_webhook_list(c->st, a.id, h[4].id, 100, &v, &n), HL_OK);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].id, h[5].id);
    assert_int_equal(v[1].id, h[6].id);
    for (size_t i = 0; i < n; i++)
        hl_webhook_clear(&v[i]);
    free(v);
    assert_int_equal(hl_store_webhook_list(c->st, b.id, 0, 100, &v, &n), HL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].id, hb.id);
    hl_webhook_clear(&v[0]);
    free(v);
}

struct patch_step {
    struct hl_webhook_patch p;
    /* the whole webhook after the step */
    const char *url;
    const char *desc; /* NULL: none */
    unsigned entities, event_types;
    int active;
};

#define URL0 "https://a.example/0"
#define URL1 "https://b.example/1"
#define URL2 "https://c.example/2"
#define AC EV(HL_EV_AGENT_CREATED)
#define AD EV(HL_EV_AGENT_DELETED)
#define CC EV(HL_EV_CONTEXT_CREATED)
#define FC EV(HL_EV_CONTEXTFILE_CREATED)
#define FD EV(HL_EV_CONTEXTFILE_DELETED)

static const struct patch_step patch_steps[] = {
    /* nothing set: nothing but updated_at changes */
    {{0, NULL, NULL, 0, 0, 0, NULL, NULL, 0, 0, 0, 0}, URL0, "d0", HL_ENT_AGENT, 0, 1},
    /* bits not set are not applied, whatever the fields hold */
    {{0, URL2, "ignored", HL_ENT_ALL, AC, 0, NULL, NULL, 0, 0, 0, 0},
     URL0,
     "d0",
     HL_ENT_AGENT,
     0,
     1},
    {{HL_WP_URL, URL1, NULL, 0, 0, 0, NULL, NULL, 0, 0, 0, 0}, URL1, "d0", HL_ENT_AGENT, 0, 1},
    {{HL_WP_DESCRIPTION, NULL, "d1", 0, 0, 0, NULL, NULL, 0, 0, 0, 0},
     URL1,
     "d1",
     HL_ENT_AGENT,
     0,
     1},
    {{HL_WP_DESCRIPTION, NULL, NULL, 0, 0, 0, NULL, NULL, 0, 0, 0, 0},
     URL1,
     NULL,
     HL_ENT_AGENT,
     0,
     1},
    {{HL_WP_ENTITIES, NULL, NULL, HL_ENT_ALL, 0, 0, NULL, NULL, 0, 0, 0, 0},
     URL1,
     NULL,
     HL_ENT_ALL,
     0,
     1},
    {{HL_WP_EVENT_TYPES, NULL, NULL, 0, AC | FC, 0, NULL, NULL, 0, 0, 0, 0},
     URL1,
     NULL,
     HL_ENT_ALL,
     AC | FC,
     1},
    {{HL_WP_URL | HL_WP_ENTITIES | HL_WP_EVENT_TYPES, URL2, NULL, HL_ENT_CONTEXTFILE, FD, 0, NULL,
      NULL, 0, 0, 0, 0},
     URL2,
     NULL,
     HL_ENT_CONTEXTFILE,
     FD,
     1},
    {{HL_WP_ACTIVE, NULL, NULL, 0, 0, 0, NULL, NULL, 0, 0, 0, 0},
     URL2,
     NULL,
     HL_ENT_CONTEXTFILE,
     FD,
     0},
    {{HL_WP_ACTIVE | HL_WP_DESCRIPTION, NULL, "back", 0, 0, 1, NULL, NULL, 0, 0, 0, 0},
     URL2,
     "back",
     HL_ENT_CONTEXTFILE,
     FD,
     1},
    {{HL_WP_EVENT_TYPES, NULL, NULL, 0, 0, 0, NULL, NULL, 0, 0, 0, 0},
     URL2,
     "back",
     HL_ENT_CONTEXTFILE,
     0,
     1},
};

static void c_webhook_update(struct ctx *c)
{
    struct hl_app a, b;
    make_app(c, &a);
    make_app(c, &b);
    char url[] = URL0, desc[] = "d0";
    struct hl_webhook w = {0};
    new_uid("webhook-", w.uid);
    w.app_id = a.id;
    w.url = url;
    w.description = desc;
    w.entities = HL_ENT_AGENT;
    w.active = 1;
    assert_int_equal(hl_secret_new(w.secret, sizeof(w.secret)), HL_OK);
    w.created_at = w.updated_at = 1700000000000;
    assert_int_equal(hl_store_webhook_create(c->st, &w, 0), HL_OK);

    for (size_t i = 0; i < sizeof(patch_steps) / sizeof(patch_steps[0]); i++) {
        const struct patch_step *s = &patch_steps[i];
        int64_t now = 1700000000000 + (int64_t)(i + 1) * SEC;
        struct hl_webhook out, got;
        print_message("patch step %zu\n", i);
        assert_int_equal(hl_store_webhook_update(c->st, a.id, w.uid, &s->p, now, &out), HL_OK);
        assert_int_equal(hl_store_webhook_get(c->st, a.id, w.uid, &got), HL_OK);
        const struct hl_webhook *both[2] = {&out, &got};
        for (int k = 0; k < 2; k++) {
            const struct hl_webhook *x = both[k];
            assert_int_equal(x->id, w.id);
            assert_string_equal(x->url, s->url);
            if (s->desc)
                assert_string_equal(x->description, s->desc);
            else
                assert_null(x->description);
            assert_int_equal(x->entities, s->entities);
            assert_int_equal(x->event_types, s->event_types);
            assert_int_equal(x->active, s->active);
            assert_int_equal(x->updated_at, now);
            assert_int_equal(x->created_at, 1700000000000);
            assert_string_equal(x->secret, w.secret);
        }
        hl_webhook_clear(&out);
        hl_webhook_clear(&got);
    }

    /* another app's webhook, an unknown one: not found, nothing changed */
    struct hl_webhook_patch p = {.set = HL_WP_URL, .url = URL0};
    assert_int_equal(hl_store_webhook_update(c->st, b.id, w.uid, &p, hl_now_ms(), NULL),
                     HL_ENOTFOUND);
    char none[HL_ID_MAX];
    new_uid("webhook-", none);
    assert_int_equal(hl_store_webhook_update(c->st, a.id, none, &p, hl_now_ms(), NULL),
                     HL_ENOTFOUND);
    struct hl_webhook got;
    assert_int_equal(hl_store_webhook_get(c->st, a.id, w.uid, &got), HL_OK);
    assert_string_equal(got.url, URL2);
    hl_webhook_clear(&got);
}

static void c_pause_resume(struct ctx *c)
{
    struct hl_app a;
    struct hook h, other;
    struct ev v;
    struct jobs j = {0};
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &other);
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &v), 2);
    int64_t now = hl_now_ms();
    /* learn the delivery ids; the short lease is over by the next claim */
    claim_mine(c, now, now + 1, NULL, 0, &j);
    assert_int_equal(j.n, 2);
    int64_t d = job_of(&j, h.id)->delivery_id, d_other = job_of(&j, other.id)->delivery_id;
    expect_delivery(c, a.id, d, HL_DS_PENDING, 0);

    /* paused: the pending delivery is parked and nothing new is made for it */
    set_active(c, a.id, &h, 0, now);
    expect_delivery(c, a.id, d, HL_DS_PAUSED, 0);
    expect_delivery(c, a.id, d_other, HL_DS_PENDING, 0);
    claim_mine(c, now + MIN, now + 2 * MIN, NULL, 0, &j);
    assert_int_equal(j.n, 1);
    assert_int_equal(j.v[0].delivery_id, d_other);
    struct ev v2;
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_UPDATED, &v2), 1);

    /* pausing twice changes nothing */
    set_active(c, a.id, &h, 0, now);
    expect_delivery(c, a.id, d, HL_DS_PAUSED, 0);

    /* resumed: pending again and due */
    now = hl_now_ms();
    set_active(c, a.id, &h, 1, now);
    expect_delivery(c, a.id, d, HL_DS_PENDING, 0);
    claim_mine(c, now + 3 * MIN, now + 4 * MIN, NULL, 0, &j);
    const struct hl_job *got = job_of(&j, h.id);
    assert_non_null(got);
    assert_int_equal(got->delivery_id, d);
    assert_string_equal(got->event_uid, v.e.uid);
    assert_int_equal(got->attempts, 0);
    /* (job_of found one job of h: the event published while paused was never queued for it) */
    jobs_free(&j);
}

static void c_webhook_delete(struct ctx *c)
{
    struct hl_app a, b;
    struct hook h, keep;
    struct ev v;
    struct jobs j = {0};
    make_app(c, &a);
    make_app(c, &b);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &keep);
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &v), 2);
    int64_t now = hl_now_ms();
    claim_mine(c, now, now + 1, NULL, 0, &j);
    assert_int_equal(j.n, 2);
    int64_t d = job_of(&j, h.id)->delivery_id;

    /* another app cannot delete it */
    assert_int_equal(hl_store_webhook_delete(c->st, b.id, h.uid, now), HL_ENOTFOUND);
    struct hl_webhook w;
    get_hook(c, a.id, &h, &w);
    hl_webhook_clear(&w);

    assert_int_equal(hl_store_webhook_delete(c->st, a.id, h.uid, now), HL_OK);
    assert_int_equal(hl_store_webhook_get(c->st, a.id, h.uid, &w), HL_ENOTFOUND);
    assert_int_equal(hl_store_webhook_delete(c->st, a.id, h.uid, now), HL_ENOTFOUND);
    struct hl_webhook_patch p = {.set = HL_WP_ACTIVE, .active = 1};
    assert_int_equal(hl_store_webhook_update(c->st, a.id, h.uid, &p, now, NULL), HL_ENOTFOUND);
    struct hl_webhook *list = NULL;
    size_t n = 0;
    assert_int_equal(hl_store_webhook_list(c->st, a.id, 0, 100, &list, &n), HL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, keep.id);
    hl_webhook_clear(&list[0]);
    free(list);

    /* its pending delivery is cancelled; the other webhook's is not */
    expect_delivery(c, a.id, d, HL_DS_CANCELLED, 0);
    claim_mine(c, now + MIN, now + 2 * MIN, NULL, 0, &j);
    assert_int_equal(j.n, 1);
    assert_int_equal(j.v[0].webhook_id, keep.id);
    /* and new events pass it by */
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_DELETED, &v), 1);
    /* its deliveries stay readable, not sendable */
    expect_delivery(c, a.id, d, HL_DS_CANCELLED, 0);
    assert_int_equal(hl_store_delivery_resend(c->st, a.id, d, now + 3 * MIN), HL_EREFUSED);
    assert_int_equal(hl_store_delivery_resend(c->st, b.id, d, now + 3 * MIN), HL_ENOTFOUND);
    assert_int_equal(hl_store_webhook_get_any(c->st, a.id, h.uid, &w), HL_OK);
    assert_int_equal(w.id, h.id);
    assert_int_equal(w.deleted_at, now);
    hl_webhook_clear(&w);
    assert_int_equal(hl_store_webhook_get_any(c->st, b.id, h.uid, &w), HL_ENOTFOUND);
    jobs_free(&j);
}

/* Rotations: every earlier secret whose overlap has not ended signs, newest first, at most
 * HL_PREV_SECRETS_MAX; one without overlap ends them all. */
static void c_rotate_secret(struct ctx *c)
{
    struct hl_app a;
    struct hook h;
    struct ev v;
    struct jobs j = {0};
    struct hl_webhook w;
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    int64_t now = hl_now_ms();
    char secrets[8][HL_SECRET_SIZE];
    memcpy(secrets[0], h.secret, HL_SECRET_SIZE);
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(hl_secret_new(secrets[i], HL_SECRET_SIZE), HL_OK);
        assert_int_equal(
            hl_store_rotate_secret(c->st, a.id, h.uid, secrets[i], now + i * HOUR, now + i), HL_OK);
    }
    get_hook(c, a.id, &h, &w);
    assert_string_equal(w.secret, secrets[3]);
    assert_int_equal(w.prev.n, 3);
    for (int k = 0; k < 3; k++) { /* newest first */
        assert_string_equal(w.prev.v[k].secret, secrets[2 - k]);
        assert_int_equal(w.prev.v[k].until, now + (3 - k) * HOUR);
    }
    hl_webhook_clear(&w);
    /* a claim carries them; after the last one ends, none */
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &v), 1);
    int64_t t = hl_now_ms();
    claim_mine(c, t, t + 1, NULL, 0, &j);
    assert_int_equal(j.n, 1);
    assert_string_equal(j.v[0].secret, secrets[3]);
    assert_int_equal(j.v[0].prev.n, 3);
    assert_string_equal(j.v[0].prev.v[2].secret, secrets[0]);
    claim_mine(c, now + 3 * HOUR, now + 3 * HOUR + 1, NULL, 0, &j);
    assert_int_equal(j.n, 1);
    assert_int_equal(j.v[0].prev.n, 0);
    /* the sixth oldest drops first */
    for (int i = 4; i <= 7; i++) {
        assert_int_equal(hl_secret_new(secrets[i], HL_SECRET_SIZE), HL_OK);
        assert_int_equal(hl_store_rotate_secret(c->st, a.id, h.uid, secrets[i], now + DAY, now + i),
                         HL_OK);
    }
    get_hook(c, a.id, &h, &w);
    assert_int_equal(w.prev.n, HL_PREV_SECRETS_MAX);
    for (int k = 0; k < HL_PREV_SECRETS_MAX; k++)
        assert_string_equal(w.prev.v[k].secret, secrets[6 - k]);
    hl_webhook_clear(&w);
    /* a rotation later on leaves out those expired by then */
    assert_int_equal(
        hl_store_rotate_secret(c->st, a.id, h.uid, secrets[0], now + 3 * DAY, now + 2 * DAY),
        HL_OK);
    get_hook(c, a.id, &h, &w);
    assert_int_equal(w.prev.n, 1); /* 6 .. 3 signed for a day */
    assert_string_equal(w.prev.v[0].secret, secrets[7]);
    assert_int_equal(w.prev.v[0].until, now + 3 * DAY);
    hl_webhook_clear(&w);
    /* without overlap: a clean cut */
    assert_int_equal(
        hl_store_rotate_secret(c->st, a.id, h.uid, secrets[1], now + 3 * HOUR, now + 3 * HOUR),
        HL_OK);
    get_hook(c, a.id, &h, &w);
    assert_string_equal(w.secret, secrets[1]);
    assert_int_equal(w.prev.n, 0);
    hl_webhook_clear(&w);
    assert_int_equal(hl_store_rotate_secret(c->st, a.id, "webhook-nope", secrets[1], now, now),
                     HL_ENOTFOUND);
    jobs_free(&j);
}

/* How many of a webhook's deliveries its list shows with status st (the truth the counters
 * must match: read from the deliveries themselves). */
static int64_t listed(struct ctx *c, int64_t app_id, int64_t hook, int st)
{
    int64_t total = 0, after = 0;
    for (;;) {
        struct hl_delivery_filter f = {.status = st, .type = -1};
        struct hl_delivery *dl = NULL;
        size_t n = 0;
        assert_int_equal(hl_store_delivery_list(c->st, app_id, hook, &f, after, 100, &dl, &n),
                         HL_OK);
        for (size_t i = 0; i < n; i++) {
            after = dl[i].id;
            hl_delivery_clear(&dl[i]);
        }
        free(dl);
        total += (int64_t)n;
        if (n < 100)
            return total;
    }
}

/* Checks that a webhook's stats (counters) say what its deliveries say, and returns them. */
static struct hl_webhook_stats expect_counts(struct ctx *c, int64_t app_id, int64_t hook)
{
    struct hl_webhook_stats s;
    assert_int_equal(hl_store_webhook_stats(c->st, hook, &s), HL_OK);
    int64_t pending =
        listed(c, app_id, hook, HL_DS_PENDING) + listed(c, app_id, hook, HL_DS_PAUSED);
    if (s.pending != pending || s.failing != listed(c, app_id, hook, HL_DS_FAILING) ||
        s.succeeded != listed(c, app_id, hook, HL_DS_SUCCEEDED) ||
        s.failed != listed(c, app_id, hook, HL_DS_FAILED))
        fail_msg("webhook %lld: stats pending %lld failing %lld succeeded %lld failed %lld, but"
                 " its deliveries are %lld, %lld, %lld, %lld",
                 (long long)hook, (long long)s.pending, (long long)s.failing,
                 (long long)s.succeeded, (long long)s.failed, (long long)pending,
                 (long long)listed(c, app_id, hook, HL_DS_FAILING),
                 (long long)listed(c, app_id, hook, HL_DS_SUCCEEDED),
                 (long long)listed(c, app_id, hook, HL_DS_FAILED));
    return s;
}

static void expect_stats(struct hl_webhook_stats s, int64_t pending, int64_t failing,
                         int64_t succeeded, int64_t failed)
{
    assert_int_equal(s.pending, pending);
    assert_int_equal(s.failing, failing);
    assert_int_equal(s.succeeded, succeeded);
    assert_int_equal(s.failed, failed);
}

static void record_one(struct ctx *c, int64_t delivery, int64_t hook, enum hl_outcome out);

/* The counters behind stats (issue 20) follow every change of a delivery: fan-out, attempts
 * that succeed, retry and fail, recover, resend, pause and resume, and retention's removal. */
#define NCOUNT 6
static void c_counters(struct ctx *c)
{
    struct hl_app a;
    struct hook h1, h2;
    make_app(c, &a);
    forget_hooks(c);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h1);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h2);
    int64_t old = hl_now_ms() - 400 * DAY;
    struct ev v[NCOUNT];
    for (size_t i = 0; i < NCOUNT; i++) {
        ev_init(&v[i], a.id, HL_EV_AGENT_UPDATED, "t", "agent-c", old + (int64_t)i);
        int64_t made = 0;
        assert_int_equal(publish_ev(c, &v[i], 0, &made), HL_OK);
        assert_int_equal(made, 2);
    }
    expect_stats(expect_counts(c, a.id, h1.id), NCOUNT, 0, 0, 0);
    expect_stats(expect_counts(c, a.id, h2.id), NCOUNT, 0, 0, 0);
    /* h1: two succeed, two will retry, two fail for good; h2: all succeed */
    struct jobs j = {0};
    int64_t t = hl_now_ms();
    claim_mine(c, t + SEC, t + HOUR, NULL, 0, &j);
    assert_int_equal(j.n, 2 * NCOUNT);
    int64_t d1[NCOUNT], d2[NCOUNT];
    size_t n1 = 0, n2 = 0;
    for (size_t k = 0; k < j.n; k++) {
        if (j.v[k].webhook_id == h1.id)
            d1[n1++] = j.v[k].delivery_id;
        else
            d2[n2++] = j.v[k].delivery_id;
    }
    jobs_free(&j);
    assert_int_equal(n1, NCOUNT);
    for (size_t i = 0; i < NCOUNT; i++) {
        record_one(c, d1[i], h1.id, i < 2 ? HL_OUT_SUCCESS : i < 4 ? HL_OUT_RETRY : HL_OUT_FAILED);
        record_one(c, d2[i], h2.id, HL_OUT_SUCCESS);
    }
    expect_stats(expect_counts(c, a.id, h1.id), 0, 2, 2, 2);
    expect_stats(expect_counts(c, a.id, h2.id), 0, 0, NCOUNT, 0);
    /* recover: the failed are pending again, shown as failing (their last attempt failed) */
    struct hl_recovered got;
    assert_int_equal(hl_store_recover(c->st, h1.id, old - 1, 0, hl_now_ms(), &got), HL_OK);
    assert_int_equal(got.failed, 2);
    expect_stats(expect_counts(c, a.id, h1.id), 0, 4, 2, 0);
    /* resend one of h2's: pending again; pause h2: paused count as pending */
    assert_int_equal(hl_store_delivery_resend(c->st, a.id, d2[0], hl_now_ms()), HL_OK);
    expect_stats(expect_counts(c, a.id, h2.id), 1, 0, NCOUNT - 1, 0);
    set_active(c, a.id, &h2, 0, hl_now_ms());
    expect_stats(expect_counts(c, a.id, h2.id), 1, 0, NCOUNT - 1, 0);
    set_active(c, a.id, &h2, 1, hl_now_ms());
    expect_stats(expect_counts(c, a.id, h2.id), 1, 0, NCOUNT - 1, 0);
    /* everything due now: h1's retried ones fail again, the rest succeed */
    t = hl_now_ms();
    claim_mine(c, t + SEC, t + HOUR, NULL, 0, &j);
    assert_int_equal(j.n, 5);
    for (size_t k = 0; k < j.n; k++) {
        int again = j.v[k].delivery_id == d1[2] || j.v[k].delivery_id == d1[3];
        record_one(c, j.v[k].delivery_id, j.v[k].webhook_id,
                   again ? HL_OUT_FAILED : HL_OUT_SUCCESS);
    }
    jobs_free(&j);
    expect_stats(expect_counts(c, a.id, h1.id), 0, 0, 4, 2);
    expect_stats(expect_counts(c, a.id, h2.id), 0, 0, NCOUNT, 0);
    /* retention removes the old events' deliveries: the counts are of those stored */
    struct hl_prune q = {.before = old + NCOUNT / 2, .scan = 100};
    struct hl_prune_result r;
    do
        assert_int_equal(hl_store_prune(c->st, &q, &r), HL_OK);
    while (r.busy);
    expect_stats(expect_counts(c, a.id, h2.id), 0, 0, NCOUNT - NCOUNT / 2, 0);
    struct hl_webhook_stats s = expect_counts(c, a.id, h1.id);
    assert_int_equal(s.succeeded + s.failed, NCOUNT - NCOUNT / 2);
    q.before = old + NCOUNT;
    do
        assert_int_equal(hl_store_prune(c->st, &q, &r), HL_OK);
    while (r.busy);
    expect_stats(expect_counts(c, a.id, h1.id), 0, 0, 0, 0);
    expect_stats(expect_counts(c, a.id, h2.id), 0, 0, 0, 0);
}

/* Counters stay exact while several threads publish and record at once (on PostgreSQL several
 * sessions, each adding to its own stripe of the same webhooks' counters). */
#define CW_THREADS 4
#define CW_EVENTS 25
#define CW_HOOKS 3
struct count_worker {
    struct ctx *c;
    int64_t app_id;
    int k;
    int fail;
};

static void *count_publish(void *arg)
{
    struct count_worker *w = arg;
    for (int i = 0; i < CW_EVENTS && !w->fail; i++) {
        struct ev v;
        ev_init(&v, w->app_id, HL_EV_AGENT_CREATED, "t", "agent-w", hl_now_ms());
        int64_t made = 0;
        struct hl_change ch = {.op = HL_OP_NONE, .ev = &v.e};
        w->fail = hl_store_commit(w->c->st, &ch, 1, NULL, &made) != HL_OK || made != CW_HOOKS;
    }
    return NULL;
}

static void *count_record(void *arg)
{
    struct count_worker *w = arg;
    for (;;) {
        int64_t t = hl_now_ms();
        struct hl_claim cl = {.now = t + SEC, .lease_until = t + HOUR, .max = 8};
        struct hl_job *v = NULL;
        size_t n = 0;
        if (hl_store_claim(w->c->st, &cl, &v, &n) != HL_OK) {
            w->fail = 1;
            return NULL;
        }
        for (size_t i = 0; i < n; i++) {
            if (is_mine(w->c, v[i].webhook_id)) {
                enum hl_outcome o = v[i].delivery_id % 3 == 0   ? HL_OUT_SUCCESS
                                    : v[i].delivery_id % 3 == 1 ? HL_OUT_RETRY
                                                                : HL_OUT_FAILED;
                struct hl_attempt at = {.delivery_id = v[i].delivery_id,
                                        .webhook_id = v[i].webhook_id,
                                        .started_at = t,
                                        .status_code = o == HL_OUT_SUCCESS ? 200 : 503,
                                        .error = o == HL_OUT_SUCCESS ? NULL : "HTTP 503",
                                        .outcome = o,
                                        .next_attempt_at = t + DAY};
                w->fail |= hl_store_record(w->c->st, &at, 1) != HL_OK;
            }
            hl_job_clear(&v[i]);
        }
        free(v);
        if (n == 0)
            return NULL;
    }
}

static void c_counters_concurrent(struct ctx *c)
{
    struct hl_app a;
    struct hook h[CW_HOOKS];
    make_app(c, &a);
    forget_hooks(c);
    for (size_t i = 0; i < CW_HOOKS; i++)
        make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h[i]);
    void *(*phase[2])(void *) = {count_publish, count_record};
    for (size_t p = 0; p < 2; p++) {
        pthread_t th[CW_THREADS];
        struct count_worker w[CW_THREADS];
        for (int k = 0; k < CW_THREADS; k++) {
            w[k] = (struct count_worker){c, a.id, k, 0};
            assert_int_equal(pthread_create(&th[k], NULL, phase[p], &w[k]), 0);
        }
        for (int k = 0; k < CW_THREADS; k++) {
            assert_int_equal(pthread_join(th[k], NULL), 0);
            assert_false(w[k].fail);
        }
        int64_t sum = 0;
        for (size_t i = 0; i < CW_HOOKS; i++) {
            struct hl_webhook_stats s = expect_counts(c, a.id, h[i].id);
            assert_int_equal(s.pending + s.failing + s.succeeded + s.failed,
                             CW_THREADS * CW_EVENTS);
            sum += p == 0 ? s.pending : s.failing;
        }
        /* after publishing all are pending; after recording a third of them are failing */
        assert_true(p == 0 ? sum == CW_HOOKS * CW_THREADS * CW_EVENTS : sum > 0);
    }
}

/* Runs sql on conn and fails the case unless it succeeds. */
static void pg_ok(PGconn *conn, const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

/* A new app with two webhooks for every event (h), and events events, each delivered to both. */
static void two_hooks(struct ctx *c, struct hl_app *a, struct hook h[2], int events)
{
    make_app(c, a);
    forget_hooks(c);
    for (size_t i = 0; i < 2; i++)
        make_hook(c, a->id, HL_ENT_ALL, 0, 1, &h[i]);
    for (int i = 0; i < events; i++) {
        struct ev v;
        int64_t made = 0;
        ev_init(&v, a->id, HL_EV_AGENT_CREATED, "t", "agent-s", hl_now_ms());
        assert_int_equal(publish_ev(c, &v, 0, &made), HL_OK);
        assert_int_equal(made, 2);
    }
}

/* Two transactions change two webhooks' deliveries in opposite orders (as an API commit and a
 * dispatcher's record may): their counters never make them wait for each other, even when their
 * sessions would have shared a stripe (pg_backend_pid() % 16, which deadlocked them), and the
 * fold of the sessions gone keeps the counts exact. */
static void c_counters_sessions(struct ctx *c)
{
    if (strncmp(c->be->name, "postgres", 8) != 0)
        return; /* SQLite: one writer, one stripe */
    struct hl_app a;
    struct hook h[2];
    two_hooks(c, &a, h, 2);
    /* 17 sessions: two of them shared a stripe of 16 */
    PGconn *conn[17] = {0};
    int x = -1, y = -1;
    for (int i = 0; i < 17 && x < 0; i++) {
        conn[i] = PQconnectdb(c->url);
        assert_int_equal(PQstatus(conn[i]), CONNECTION_OK);
        for (int k = 0; k < i && x < 0; k++)
            if (PQbackendPID(conn[k]) % 16 == PQbackendPID(conn[i]) % 16)
                x = k, y = i;
    }
    assert_true(x >= 0);
    char sql[256];
    /* the n-th delivery (0 or 1) of webhook w, paused */
#define PAUSE(conn, w, n)                                                                          \
    (snprintf(sql, sizeof(sql),                                                                    \
              "UPDATE deliveries SET status = " HL_XSTR(                                           \
                  HL_DS_PAUSED_N) " WHERE id = (SELECT id"                                         \
                                  " FROM deliveries WHERE webhook_id = %lld ORDER BY id OFFSET "   \
                                  "%d LIMIT 1)",                                                   \
              (long long)h[w].id, n),                                                              \
     sql)
    pg_ok(conn[x], "BEGIN");
    pg_ok(conn[y], "BEGIN");
    pg_ok(conn[x], PAUSE(conn[x], 0, 0));
    pg_ok(conn[y], PAUSE(conn[y], 1, 0));
    assert_int_equal(PQsendQuery(conn[x], PAUSE(conn[x], 1, 1)), 1);
    pg_ok(conn[y], PAUSE(conn[y], 0, 1));
    PGresult *r = PQgetResult(conn[x]);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("the second update: %s", PQresultErrorMessage(r));
    PQclear(r);
    assert_null(PQgetResult(conn[x]));
#undef PAUSE
    pg_ok(conn[x], "COMMIT");
    pg_ok(conn[y], "COMMIT");
    for (int i = 0; i < 17; i++)
        if (conn[i])
            PQfinish(conn[i]);
    /* the sessions gone: their stripes fold into one row per webhook, the counts unchanged */
    for (int tries = 0; tries < 100; tries++) {
        assert_int_equal(hl_store_fold_counts(c->st), HL_OK);
        struct hl_webhook_stats s0 = expect_counts(c, a.id, h[0].id);
        struct hl_webhook_stats s1 = expect_counts(c, a.id, h[1].id);
        assert_int_equal(s0.pending, 2);
        assert_int_equal(s1.pending, 2);
        PGconn *q = PQconnectdb(c->url);
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM webhook_counts WHERE webhook_id IN (%lld, %lld)"
                 " AND stripe <> 0 AND NOT EXISTS (SELECT 1 FROM pg_stat_activity"
                 " WHERE pid = stripe)",
                 (long long)h[0].id, (long long)h[1].id);
        r = PQexec(q, sql);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        long left = strtol(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(q);
        if (left == 0)
            return;
        usleep(20000); /* a session just closed may still be listed */
    }
    fail_msg("the stripes of sessions gone were not folded");
}

/* SQLite: a delivery moved to another webhook leaves the counts of the one and joins the
 * other's (nothing moves deliveries today; the counters still follow the rows). */
static void c_counters_move(struct ctx *c)
{
    if (strcmp(c->be->name, "sqlite") != 0)
        return; /* PostgreSQL's statement triggers count old and new rows apart */
    struct hl_app a;
    struct hook h[2];
    two_hooks(c, &a, h, 1);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(c->url, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    char sql[256];
    snprintf(sql, sizeof(sql), "UPDATE deliveries SET webhook_id = %lld WHERE webhook_id = %lld",
             (long long)h[1].id, (long long)h[0].id);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    assert_int_equal(rc, SQLITE_OK);
    expect_stats(expect_counts(c, a.id, h[0].id), 0, 0, 0, 0);
    expect_stats(expect_counts(c, a.id, h[1].id), 2, 0, 0, 0);
}

/* Failing deliveries: pending after a failed attempt, shown and counted as failing; recover
 * sends them now, and queues failed ones for one more attempt. */
static void c_failing_recover(struct ctx *c)
{
    struct hl_app a;
    struct hook h;
    struct ev v1, v2, v3;
    struct jobs j = {0};
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &v1), 1);
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_UPDATED, &v2), 1);
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_DELETED, &v3), 1);
    int64_t now = hl_now_ms();
    claim_mine(c, now, now + MIN, NULL, 0, &j);
    assert_int_equal(j.n, 3);
    int64_t ids[3];
    for (size_t k = 0; k < 3; k++) {
        const char *e = j.v[k].event_uid;
        ids[strcmp(e, v1.e.uid) == 0 ? 0 : strcmp(e, v2.e.uid) == 0 ? 1 : 2] = j.v[k].delivery_id;
    }
    /* 1 fails and retries in an hour, 2 fails for good, 3 is not tried yet */
    struct hl_attempt at[2] = {
        {.delivery_id = ids[0],
         .webhook_id = h.id,
         .started_at = now,
         .status_code = 500,
         .error = "HTTP 500",
         .outcome = HL_OUT_RETRY,
         .next_attempt_at = now + HOUR},
        {.delivery_id = ids[1],
         .webhook_id = h.id,
         .started_at = now,
         .status_code = 0,
         .error = "connection refused",
         .outcome = HL_OUT_FAILED},
    };
    assert_int_equal(hl_store_record(c->st, at, 2), HL_OK);
    expect_delivery(c, a.id, ids[0], HL_DS_FAILING, 1);
    expect_delivery(c, a.id, ids[1], HL_DS_FAILED, 1);
    expect_delivery(c, a.id, ids[2], HL_DS_PENDING, 0);
    struct hl_webhook_stats st;
    assert_int_equal(hl_store_webhook_stats(c->st, h.id, &st), HL_OK);
    assert_int_equal(st.pending, 1);
    assert_int_equal(st.failing, 1);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.succeeded, 0);
    static const int by[] = {HL_DS_FAILING, HL_DS_PENDING, HL_DS_FAILED};
    for (size_t k = 0; k < 3; k++) {
        struct hl_delivery_filter f = {.status = by[k], .type = -1};
        struct hl_delivery *dl = NULL;
        size_t n = 0;
        assert_int_equal(hl_store_delivery_list(c->st, a.id, h.id, &f, 0, 100, &dl, &n), HL_OK);
        assert_int_equal(n, 1);
        assert_int_equal(dl[0].id, ids[k == 0 ? 0 : k == 1 ? 2 : 1]);
        assert_int_equal(dl[0].next_attempt_at, k == 0 ? now + HOUR : dl[0].next_attempt_at);
        hl_delivery_clear(&dl[0]);
        free(dl);
    }
    /* recover at now + 2 min, before the failing one's next attempt: both go now */
    int64_t t = now + 2 * MIN;
    struct hl_recovered got;
    assert_int_equal(hl_store_recover(c->st, h.id, now - MIN, 0, t, &got), HL_OK);
    assert_int_equal(got.failed, 1);
    assert_int_equal(got.failing, 1);
    expect_delivery(c, a.id, ids[1], HL_DS_FAILING, 1);
    claim_mine(c, t, t + MIN, NULL, 0, &j);
    assert_int_equal(j.n, 3); /* the recovered two, and the one never tried */
    /* in flight (leased): left alone */
    assert_int_equal(hl_store_recover(c->st, h.id, now - MIN, 0, t, &got), HL_OK);
    assert_int_equal(got.failed + got.failing, 0);
    /* a window that holds none of them */
    assert_int_equal(hl_store_recover(c->st, h.id, now + DAY, 0, t + 2 * MIN, &got), HL_OK);
    assert_int_equal(got.failed + got.failing, 0);
    /* a success ends failing; a resent success is pending, not failing */
    struct hl_attempt ok = {.delivery_id = ids[0],
                            .webhook_id = h.id,
                            .started_at = t,
                            .status_code = 200,
                            .outcome = HL_OUT_SUCCESS};
    assert_int_equal(hl_store_record(c->st, &ok, 1), HL_OK);
    expect_delivery(c, a.id, ids[0], HL_DS_SUCCEEDED, 2);
    assert_int_equal(hl_store_delivery_resend(c->st, a.id, ids[0], t + 2 * MIN), HL_OK);
    expect_delivery(c, a.id, ids[0], HL_DS_PENDING, 2);
    jobs_free(&j);
}

/* ---- resources, commits and fan-out ---- */

static void c_resources(struct ctx *c)
{
    struct hl_app a, b;
    struct hook h;
    struct ev v;
    struct res r, ctx1, ctx2, f1, f2, f3;
    int64_t made = 0;
    make_app(c, &a);
    make_app(c, &b);
    make_hook(c, a.id, HL_ENT_AGENT, 0, 1, &h);

    res_init(&r, a.id, HL_ENT_AGENT, NULL, NULL, "tenant-1",
             "{\"uid\":\"x\",\"agentName\":\"Caf\xc3\xa9\"}", 1700000000000);
    assert_int_equal(change(c, HL_OP_CREATE, &r, 0, &v, &made), HL_OK);
    assert_int_equal(made, 1);
    struct hl_resource got;
    assert_int_equal(hl_store_resource_get(c->st, a.id, HL_ENT_AGENT, r.r.uid, &got), HL_OK);
    assert_true(got.id > 0);
    assert_int_equal(got.kind, HL_ENT_AGENT);
    assert_string_equal(got.uid, r.r.uid);
    assert_int_equal(got.app_id, a.id);
    assert_string_equal(got.parent_uid, "");
    assert_string_equal(got.tenant, "tenant-1");
    assert_int_equal(got.body_len, strlen(r.body));
    assert_memory_equal(got.body, r.body, got.body_len);
    assert_int_equal(got.version, 1);
    assert_int_equal(got.created_at, 1700000000000);
    assert_int_equal(got.updated_at, 1700000000000);
    hl_resource_clear(&got);
    /* another kind, another app: not found */
    assert_int_equal(hl_store_resource_get(c->st, a.id, HL_ENT_CONTEXT, r.r.uid, &got),
                     HL_ENOTFOUND);
    assert_int_equal(hl_store_resource_get(c->st, b.id, HL_ENT_AGENT, r.r.uid, &got), HL_ENOTFOUND);

    /* an update names the version it read and bumps it */
    res_init(&r, a.id, HL_ENT_AGENT, r.r.uid, NULL, "tenant-2", "{\"uid\":\"x\",\"v\":2}",
             1700000000000);
    r.r.updated_at = 1700000005000;
    assert_int_equal(change(c, HL_OP_UPDATE, &r, 1, &v, &made), HL_OK);
    assert_int_equal(made, 2);
    assert_int_equal(hl_store_resource_get(c->st, a.id, HL_ENT_AGENT, r.r.uid, &got), HL_OK);
    assert_int_equal(got.version, 2);
    assert_string_equal(got.body, "{\"uid\":\"x\",\"v\":2}");
    assert_string_equal(got.tenant, "tenant-2");
    assert_int_equal(got.created_at, 1700000000000);
    assert_int_equal(got.updated_at, 1700000005000);
    hl_resource_clear(&got);

    /* contexts and files: lists by kind, parent and tenant, paged */
    res_init(&ctx1, a.id, HL_ENT_CONTEXT, NULL, NULL, "tenant-1", "{\"c\":1}", hl_now_ms());
    res_init(&ctx2, a.id, HL_ENT_CONTEXT, NULL, NULL, "tenant-2", "{\"c\":2}", hl_now_ms());
    assert_int_equal(change(c, HL_OP_CREATE, &ctx1, 0, &v, &made), HL_OK);
    assert_int_equal(change(c, HL_OP_CREATE, &ctx2, 0, &v, &made), HL_OK);
    res_init(&f1, a.id, HL_ENT_CONTEXTFILE, NULL, ctx1.r.uid, "tenant-1", "{\"f\":1}", hl_now_ms());
    res_init(&f2, a.id, HL_ENT_CONTEXTFILE, NULL, ctx1.r.uid, "tenant-1", "{\"f\":2}", hl_now_ms());
    res_init(&f3, a.id, HL_ENT_CONTEXTFILE, NULL, ctx2.r.uid, "tenant-2", "{\"f\":3}", hl_now_ms());
    assert_int_equal(change(c, HL_OP_CREATE, &f1, 0, &v, &made), HL_OK);
    assert_int_equal(change(c, HL_OP_CREATE, &f2, 0, &v, &made), HL_OK);
    assert_int_equal(change(c, HL_OP_CREATE, &f3, 0, &v, &made), HL_OK);
    /* the webhook takes agents only */
    assert_int_equal(made, 2);

    static const struct {
        enum hl_entity kind;
        int parent; /* 0 none, 1 ctx1, 2 ctx2 */
        const char *tenant;
        size_t limit;
        const char *want[4]; /* bodies in order */
    } lists[] = {
        {HL_ENT_CONTEXTFILE, 1, NULL, 10, {"{\"f\":1}", "{\"f\":2}"}},
        {HL_ENT_CONTEXTFILE, 2, NULL, 10, {"{\"f\":3}"}},
        {HL_ENT_CONTEXTFILE, 0, NULL, 10, {"{\"f\":1}", "{\"f\":2}", "{\"f\":3}"}},
        {HL_ENT_CONTEXTFILE, 0, "tenant-2", 10, {"{\"f\":3}"}},
        {HL_ENT_CONTEXTFILE, 1, "tenant-2", 10, {NULL}},
        {HL_ENT_CONTEXT, 0, NULL, 10, {"{\"c\":1}", "{\"c\":2}"}},
        {HL_ENT_CONTEXT, 0, "tenant-1", 10, {"{\"c\":1}"}},
        {HL_ENT_AGENT, 0, NULL, 10, {"{\"uid\":\"x\",\"v\":2}"}},
        {HL_ENT_AGENT, 0, "tenant-1", 10, {NULL}},
        /* paging: one at a time */
        {HL_ENT_CONTEXTFILE, 0, NULL, 1, {"{\"f\":1}", "{\"f\":2}", "{\"f\":3}"}},
    };
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        const char *parent = lists[i].parent == 1   ? ctx1.r.uid
                             : lists[i].parent == 2 ? ctx2.r.uid
                                                    : NULL;
        size_t k = 0;
        int64_t after = 0;
        print_message("resource list %zu\n", i);
        for (;;) {
            struct hl_resource *arr = NULL;
            size_t n = 0;
            assert_int_equal(hl_store_resource_list(c->st, a.id, lists[i].kind, parent,
                                                    lists[i].tenant, after, lists[i].limit, &arr,
                                                    &n),
                             HL_OK);
            assert_true(n <= lists[i].limit);
            for (size_t m = 0; m < n; m++) {
                assert_true(k < 4 && lists[i].want[k]);
                assert_string_equal(arr[m].body, lists[i].want[k++]);
                assert_true(arr[m].id > after);
                after = arr[m].id;
                hl_resource_clear(&arr[m]);
            }
            free(arr);
            if (n < lists[i].limit)
                break;
        }
        assert_true(k == 4 || lists[i].want[k] == NULL);
    }
    /* another app sees none of them */
    struct hl_resource *arr = NULL;
    size_t n = 0;
    assert_int_equal(
        hl_store_resource_list(c->st, b.id, HL_ENT_CONTEXTFILE, NULL, NULL, 0, 100, &arr, &n),
        HL_OK);
    assert_int_equal(n, 0);
    free(arr);

    /* a delete names the version too */
    assert_int_equal(change(c, HL_OP_DELETE, &r, 2, &v, &made), HL_OK);
    assert_int_equal(made, 3);
    assert_int_equal(hl_store_resource_get(c->st, a.id, HL_ENT_AGENT, r.r.uid, &got), HL_ENOTFOUND);
}

/* Fan-out: which webhooks get a delivery for each event type. */
struct fan_hook {
    unsigned entities, event_types;
    int active, other_app, deleted;
};

static const struct fan_hook fan_hooks[] = {
    /* 0 */ {HL_ENT_ALL, 0, 1, 0, 0},
    /* 1 */ {HL_ENT_AGENT, 0, 1, 0, 0},
    /* 2 */ {HL_ENT_CONTEXT | HL_ENT_CONTEXTFILE, CC | FD, 1, 0, 0},
    /* 3 */ {HL_ENT_AGENT, AD, 1, 0, 0},
    /* 4 */ {HL_ENT_ALL, 0, 0, 0, 0},
    /* 5 */ {HL_ENT_ALL, 0, 1, 1, 0},
    /* 6 */ {HL_ENT_ALL, 0, 1, 0, 1},
    /* 7 */ {HL_ENT_CONTEXTFILE, 0, 1, 0, 0},
    /* 8: eventTypes outside its entities (the API refuses this): both masks must match */
    {HL_ENT_AGENT, CC, 1, 0, 0},
    /* 9 */ {HL_ENT_ALL, AC | FD, 1, 0, 0},
};
#define NFAN (sizeof(fan_hooks) / sizeof(fan_hooks[0]))
#define R(i) (1u << (i))

/* For each event type of app a, the fan_hooks rows that get a delivery. */
static const unsigned fan_want[HL_EV_COUNT] = {
    [HL_EV_AGENT_CREATED] = R(0) | R(1) | R(9),
    [HL_EV_AGENT_UPDATED] = R(0) | R(1),
    [HL_EV_AGENT_DELETED] = R(0) | R(1) | R(3),
    [HL_EV_CONTEXT_CREATED] = R(0) | R(2),
    [HL_EV_CONTEXT_UPDATED] = R(0),
    [HL_EV_CONTEXT_DELETED] = R(0),
    [HL_EV_CONTEXTFILE_CREATED] = R(0) | R(7),
    [HL_EV_CONTEXTFILE_UPDATED] = R(0) | R(7),
    [HL_EV_CONTEXTFILE_DELETED] = R(0) | R(2) | R(7) | R(9),
    /* webhook.test belongs to no entity: it goes only where only_webhook sends it */
    [HL_EV_WEBHOOK_TEST] = 0,
};

static void c_fanout(struct ctx *c)
{
    struct hl_app a, b;
    struct hook h[NFAN];
    make_app(c, &a);
    make_app(c, &b);
    for (size_t i = 0; i < NFAN; i++) {
        const struct fan_hook *f = &fan_hooks[i];
        make_hook(c, f->other_app ? b.id : a.id, f->entities, f->event_types, f->active, &h[i]);
        if (f->deleted)
            assert_int_equal(hl_store_webhook_delete(c->st, a.id, h[i].uid, hl_now_ms()), HL_OK);
    }
    struct jobs j = {0};
    for (int t = 0; t < HL_EV_COUNT; t++) {
        struct ev v;
        print_message("fan-out of %s\n", hl_event_name(t));
        ev_init(&v, a.id, t, "tenant-1", "res-1", hl_now_ms());
        /* the count is added to what *deliveries held */
        int64_t made = 1000;
        assert_int_equal(publish_ev(c, &v, 0, &made), HL_OK);
        assert_int_equal(made, 1000 + popcount(fan_want[t]));
        int64_t now = hl_now_ms();
        claim_mine(c, now, now + HOUR, NULL, 0, &j);
        unsigned rows = 0;
        for (size_t k = 0; k < j.n; k++) {
            assert_string_equal(j.v[k].event_uid, v.e.uid);
            assert_int_equal(j.v[k].payload_len, v.e.payload_len);
            assert_memory_equal(j.v[k].payload, v.e.payload, v.e.payload_len);
            for (size_t i = 0; i < NFAN; i++) {
                if (j.v[k].webhook_id == h[i].id) {
                    assert_int_equal(rows & R(i), 0); /* one delivery per webhook */
                    rows |= R(i);
                }
            }
        }
        assert_int_equal(rows, fan_want[t]);
    }

    /* only_webhook: exactly that webhook, whatever its masks */
    struct ev v;
    ev_init(&v, a.id, HL_EV_WEBHOOK_TEST, "tenant-1", "", hl_now_ms());
    int64_t made = 0;
    assert_int_equal(publish_ev(c, &v, h[3].id, &made), HL_OK);
    assert_int_equal(made, 1);
    int64_t now = hl_now_ms();
    claim_mine(c, now, now + HOUR, NULL, 0, &j);
    assert_int_equal(j.n, 1);
    assert_int_equal(j.v[0].webhook_id, h[3].id);
    assert_string_equal(j.v[0].event_uid, v.e.uid);

    /* the other app's event reaches the other app's webhook only */
    ev_init(&v, b.id, HL_EV_AGENT_CREATED, "tenant-1", "res-1", hl_now_ms());
    made = 0;
    assert_int_equal(publish_ev(c, &v, 0, &made), HL_OK);
    assert_int_equal(made, 1);
    now = hl_now_ms();
    claim_mine(c, now, now + HOUR, NULL, 0, &j);
    assert_int_equal(j.n, 1);
    assert_int_equal(j.v[0].webhook_id, h[5].id);
    jobs_free(&j);
}

static void c_version_conflict(struct ctx *c)
{
    struct hl_app a;
    struct hook h;
    struct ev v;
    struct res r, stale;
    struct jobs j = {0};
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    res_init(&r, a.id, HL_ENT_AGENT, NULL, NULL, "t", "{\"v\":1}", hl_now_ms());
    int64_t made = 0;
    assert_int_equal(change(c, HL_OP_CREATE, &r, 0, &v, &made), HL_OK);
    res_init(&r, a.id, HL_ENT_AGENT, r.r.uid, NULL, "t", "{\"v\":2}", hl_now_ms());
    assert_int_equal(change(c, HL_OP_UPDATE, &r, 1, &v, &made), HL_OK);
    assert_int_equal(made, 2);
    int64_t now = hl_now_ms();
    claim_mine(c, now, now + HOUR, NULL, 0, &j);
    assert_int_equal(j.n, 2);

    /* an update that read version 1: refused, and nothing of it is written */
    res_init(&stale, a.id, HL_ENT_AGENT, r.r.uid, NULL, "t", "{\"v\":\"stale\"}", hl_now_ms());
    uint64_t seq = hl_store_wake_seq(c->st);
    assert_int_equal(change(c, HL_OP_UPDATE, &stale, 1, &v, &made), HL_ECONFLICT);
    assert_int_equal(made, 2);
    assert_false(event_logged(c, a.id, v.e.uid));
    struct hl_resource got;
    assert_int_equal(hl_store_resource_get(c->st, a.id, HL_ENT_AGENT, r.r.uid, &got), HL_OK);
    assert_int_equal(got.version, 2);
    assert_string_equal(got.body, "{\"v\":2}");
    hl_resource_clear(&got);
    /* versions from the future are stale too */
    assert_int_equal(change(c, HL_OP_UPDATE, &stale, 3, &v, &made), HL_ECONFLICT);
    assert_false(event_logged(c, a.id, v.e.uid));

    /* a delete that read version 1: refused, the resource stays */
    assert_int_equal(change(c, HL_OP_DELETE, &r, 1, &v, &made), HL_ECONFLICT);
    assert_false(event_logged(c, a.id, v.e.uid));
    assert_int_equal(hl_store_resource_get(c->st, a.id, HL_ENT_AGENT, r.r.uid, &got), HL_OK);
    hl_resource_clear(&got);
    assert_int_equal(made, 2);
    if (!c->be->shared)
        assert_int_equal(hl_store_wake_seq(c->st), seq);
    /* no delivery came of the refused changes */
    now = hl_now_ms();
    claim_mine(c, now + 2 * HOUR, now + 3 * HOUR, NULL, 0, &j);
    assert_int_equal(j.n, 2); /* the two leased earlier, due again; nothing else */

    /* creating a uid that exists: refused, no event */
    assert_int_equal(change(c, HL_OP_CREATE, &r, 0, &v, &made), HL_ECONFLICT);
    assert_false(event_logged(c, a.id, v.e.uid));

    assert_int_equal(change(c, HL_OP_DELETE, &r, 2, &v, &made), HL_OK);
    assert_true(event_logged(c, a.id, v.e.uid));
    assert_int_equal(hl_store_resource_get(c->st, a.id, HL_ENT_AGENT, r.r.uid, &got), HL_ENOTFOUND);
    assert_int_equal(made, 3);
    jobs_free(&j);
}

/* Regression (was a bug in src/store/sqlite.c and src/store/postgres.c, apply_change): store.h
 * promises HL_ENOTFOUND "when a resource to update is gone", and src/api/publish.c turns that into
 * a 404; but both backends answer every update or delete that changed no row with HL_ECONFLICT, so
 * a resource deleted between the handler's read and its commit gives 409 instead of 404.
 * apply_change should tell the two apart (e.g. look the uid up when no row changed). */
static void c_update_gone(struct ctx *c)
{
    struct hl_app a;
    struct ev v;
    struct res r;
    int64_t made = 0;
    make_app(c, &a);
    res_init(&r, a.id, HL_ENT_AGENT, NULL, NULL, "t", "{\"v\":1}", hl_now_ms());
    assert_int_equal(change(c, HL_OP_CREATE, &r, 0, &v, &made), HL_OK);
    assert_int_equal(change(c, HL_OP_DELETE, &r, 1, &v, &made), HL_OK);
    assert_int_equal(change(c, HL_OP_UPDATE, &r, 1, &v, &made), HL_ENOTFOUND);
    assert_false(event_logged(c, a.id, v.e.uid));
    assert_int_equal(change(c, HL_OP_DELETE, &r, 1, &v, &made), HL_ENOTFOUND);
    assert_false(event_logged(c, a.id, v.e.uid));
}

static void c_commit_atomic(struct ctx *c)
{
    struct hl_app a;
    struct hook h;
    struct ev v, ev[3];
    struct res x, r[3];
    struct jobs j = {0};
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    res_init(&x, a.id, HL_ENT_CONTEXT, NULL, NULL, "t", "{\"x\":1}", hl_now_ms());
    int64_t made = 0;
    assert_int_equal(change(c, HL_OP_CREATE, &x, 0, &v, &made), HL_OK);
    int64_t now = hl_now_ms();
    claim_mine(c, now, now + 10 * HOUR, NULL, 0, &j);
    assert_int_equal(j.n, 1);

    struct {
        const char *name;
        int64_t x_version; /* the version the third change names */
        int dup_second;    /* the second change creates the first one's uid again */
        int rc;
    } cases[] = {
        {"last change stale", 5, 0, HL_ECONFLICT},
        {"duplicate uid inside the commit", 1, 1, HL_ECONFLICT},
        {"all good", 1, 0, HL_OK},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("multi-change commit: %s\n", cases[i].name);
        res_init(&r[0], a.id, HL_ENT_AGENT, NULL, NULL, "t", "{\"r\":0}", hl_now_ms());
        res_init(&r[1], a.id, HL_ENT_AGENT, cases[i].dup_second ? r[0].r.uid : NULL, NULL, "t",
                 "{\"r\":1}", hl_now_ms());
        res_init(&r[2], a.id, HL_ENT_CONTEXT, x.r.uid, NULL, "t", "{\"x\":2}", hl_now_ms());
        enum hl_op ops[3] = {HL_OP_CREATE, HL_OP_CREATE, HL_OP_UPDATE};
        struct hl_change ch[3];
        for (int k = 0; k < 3; k++) {
            ev_init(&ev[k], a.id, hl_event_for(r[k].r.kind, ops[k]), "t", r[k].r.uid, hl_now_ms());
            ch[k] = (struct hl_change){.op = ops[k],
                                       .res = &r[k].r,
                                       .expect_version = k == 2 ? cases[i].x_version : 0,
                                       .ev = &ev[k].e};
        }
        int64_t before = made;
        uint64_t seq = hl_store_wake_seq(c->st);
        assert_int_equal(hl_store_commit(c->st, ch, 3, NULL, &made), cases[i].rc);
        struct hl_resource got;
        if (cases[i].rc != HL_OK) {
            /* all or nothing: no resource, no event, no delivery, no wake-up */
            assert_int_equal(made, before);
            if (!cases[i].dup_second) {
                assert_int_equal(hl_store_resource_get(c->st, a.id, HL_ENT_AGENT, r[1].r.uid, &got),
                                 HL_ENOTFOUND);
            }
            assert_int_equal(hl_store_resource_get(c->st, a.id, HL_ENT_AGENT, r[0].r.uid, &got),
                             HL_ENOTFOUND);
            assert_int_equal(hl_store_resource_get(c->st, a.id, HL_ENT_CONTEXT, x.r.uid, &got),
                             HL_OK);
            assert_int_equal(got.version, 1);
            hl_resource_clear(&got);
            for (int k = 0; k < 3; k++)
                assert_false(event_logged(c, a.id, ev[k].e.uid));
            if (!c->be->shared)
                assert_int_equal(hl_store_wake_seq(c->st), seq);
            now = hl_now_ms();
            claim_mine(c, now, now + HOUR, NULL, 0, &j);
            assert_int_equal(j.n, 0);
        } else {
            assert_int_equal(made, before + 3);
            assert_true(hl_store_wake_seq(c->st) > seq);
            for (int k = 0; k < 3; k++) {
                assert_int_equal(hl_store_resource_get(c->st, a.id, r[k].r.kind, r[k].r.uid, &got),
                                 HL_OK);
                assert_string_equal(got.body, r[k].body);
                assert_int_equal(got.version, k == 2 ? 2 : 1);
                hl_resource_clear(&got);
                assert_true(event_logged(c, a.id, ev[k].e.uid));
            }
            now = hl_now_ms();
            claim_mine(c, now, now + HOUR, NULL, 0, &j);
            assert_int_equal(j.n, 3);
            for (int k = 0; k < 3; k++) {
                int found = 0;
                for (size_t m = 0; m < j.n; m++)
                    found += strcmp(j.v[m].event_uid, ev[k].e.uid) == 0;
                assert_int_equal(found, 1);
            }
        }
    }
    jobs_free(&j);
}

static void c_idempotency(struct ctx *c)
{
    struct hl_app a, b;
    struct ev v;
    make_app(c, &a);
    make_app(c, &b);
    char key[HL_ID_MAX];
    new_uid("idem-", key);
    struct hl_idem idem = {
        .key = key, .status = 201, .response = "{\"ok\":true,\"n\":\"\xc3\xa9\"}"};
    sha256("request one", idem.request_hash);
    ev_init(&v, a.id, HL_EV_AGENT_CREATED, "t", "agent-1", hl_now_ms());
    struct hl_change ch = {.op = HL_OP_NONE, .ev = &v.e};
    int64_t t0 = hl_now_ms();
    assert_int_equal(hl_store_commit(c->st, &ch, 1, &idem, NULL), HL_OK);

    struct hl_idem_hit hit;
    assert_int_equal(hl_store_idem_get(c->st, a.id, key, t0 - HOUR, &hit), HL_OK);
    assert_int_equal(hit.status, 201);
    assert_string_equal(hit.response, idem.response);
    assert_memory_equal(hit.request_hash, idem.request_hash, 32);
    free(hit.response);
    /* older than not_before, another app, another key: not found */
    assert_int_equal(hl_store_idem_get(c->st, a.id, key, hl_now_ms() + HOUR, &hit), HL_ENOTFOUND);
    assert_int_equal(hl_store_idem_get(c->st, b.id, key, t0 - HOUR, &hit), HL_ENOTFOUND);
    char other[HL_ID_MAX];
    new_uid("idem-", other);
    assert_int_equal(hl_store_idem_get(c->st, a.id, other, t0 - HOUR, &hit), HL_ENOTFOUND);

    /* the same key again: refused with everything the commit held */
    struct ev v2;
    struct hl_idem idem2 = {.key = key, .status = 202, .response = "{\"second\":true}"};
    sha256("request two", idem2.request_hash);
    ev_init(&v2, a.id, HL_EV_AGENT_UPDATED, "t", "agent-1", hl_now_ms());
    ch.ev = &v2.e;
    assert_int_equal(hl_store_commit(c->st, &ch, 1, &idem2, NULL), HL_ECONFLICT);
    assert_false(event_logged(c, a.id, v2.e.uid));
    assert_true(event_logged(c, a.id, v.e.uid));
    assert_int_equal(hl_store_idem_get(c->st, a.id, key, t0 - HOUR, &hit), HL_OK);
    assert_int_equal(hit.status, 201);
    assert_memory_equal(hit.request_hash, idem.request_hash, 32);
    free(hit.response);

    /* keys belong to an app: another app may use the same one */
    struct ev v3;
    ev_init(&v3, b.id, HL_EV_AGENT_CREATED, "t", "agent-1", hl_now_ms());
    ch.ev = &v3.e;
    assert_int_equal(hl_store_commit(c->st, &ch, 1, &idem2, NULL), HL_OK);
    assert_int_equal(hl_store_idem_get(c->st, b.id, key, t0 - HOUR, &hit), HL_OK);
    assert_int_equal(hit.status, 202);
    assert_string_equal(hit.response, "{\"second\":true}");
    free(hit.response);
}

static void c_event_list(struct ctx *c)
{
    struct hl_app a, b;
    make_app(c, &a);
    make_app(c, &b);
    const int64_t base = 1700000000000;
    static const int types[8] = {HL_EV_AGENT_CREATED,   HL_EV_CONTEXT_CREATED,
                                 HL_EV_AGENT_CREATED,   HL_EV_CONTEXTFILE_DELETED,
                                 HL_EV_AGENT_UPDATED,   HL_EV_AGENT_CREATED,
                                 HL_EV_CONTEXT_CREATED, HL_EV_CONTEXTFILE_DELETED};
    struct ev v[8], vb;
    for (int i = 0; i < 8; i++) {
        ev_init(&v[i], a.id, types[i], i % 2 ? "tenant-odd" : "tenant-even", "res", base + i * SEC);
        assert_int_equal(publish_ev(c, &v[i], 0, NULL), HL_OK);
    }
    ev_init(&vb, b.id, HL_EV_AGENT_CREATED, "tenant-even", "res", base);
    assert_int_equal(publish_ev(c, &vb, 0, NULL), HL_OK);

    static const struct {
        int type;
        const char *tenant;
        int64_t since, until; /* offsets from base; -1: 0 (unbounded) */
        int want[9];          /* indices, newest first, ended by -1 */
    } cases[] = {
        {-1, NULL, -1, -1, {7, 6, 5, 4, 3, 2, 1, 0, -1}},
        {HL_EV_AGENT_CREATED, NULL, -1, -1, {5, 2, 0, -1}},
        {HL_EV_CONTEXTFILE_DELETED, NULL, -1, -1, {7, 3, -1}},
        {HL_EV_AGENT_DELETED, NULL, -1, -1, {-1}},
        {-1, "tenant-even", -1, -1, {6, 4, 2, 0, -1}},
        {HL_EV_AGENT_CREATED, "tenant-even", -1, -1, {2, 0, -1}},
        {-1, "tenant-none", -1, -1, {-1}},
        /* since is inclusive, until exclusive */
        {-1, NULL, 3 * SEC, -1, {7, 6, 5, 4, 3, -1}},
        {-1, NULL, -1, 3 * SEC, {2, 1, 0, -1}},
        {-1, NULL, 2 * SEC, 5 * SEC, {4, 3, 2, -1}},
        {HL_EV_AGENT_CREATED, "tenant-odd", 0, 8 * SEC, {5, -1}},
        {-1, NULL, 8 * SEC, -1, {-1}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hl_event_filter f = {
            .type = cases[i].type,
            .tenant = cases[i].tenant,
            .since = cases[i].since < 0 ? 0 : base + cases[i].since,
            .until = cases[i].until < 0 ? 0 : base + cases[i].until,
        };
        struct hl_event *arr = NULL;
        size_t n = 0;
        print_message("event filter %zu\n", i);
        assert_int_equal(hl_store_event_list(c->st, a.id, &f, 0, 100, &arr, &n), HL_OK);
        size_t k = 0;
        for (; cases[i].want[k] >= 0; k++) {
            assert_true(k < n);
            const struct hl_event *w = &v[cases[i].want[k]].e;
            assert_string_equal(arr[k].uid, w->uid);
            assert_int_equal(arr[k].type, w->type);
            assert_int_equal(arr[k].app_id, a.id);
            assert_string_equal(arr[k].tenant, w->tenant);
            assert_string_equal(arr[k].resource_uid, "res");
            assert_int_equal(arr[k].created_at, w->created_at);
            assert_int_equal(arr[k].payload_len, w->payload_len);
            assert_memory_equal(arr[k].payload, w->payload, w->payload_len);
            assert_true(arr[k].id > 0);
            if (k)
                assert_true(arr[k].id < arr[k - 1].id);
        }
        assert_int_equal(n, k);
        for (size_t m = 0; m < n; m++)
            hl_event_clear(&arr[m]);
        free(arr);
    }

    /* pages of 3, newest first, each after the last id seen */
    struct hl_event_filter all = {.type = -1};
    int64_t after = 0;
    int next = 7;
    for (int page = 0; page < 4; page++) {
        struct hl_event *arr = NULL;
        size_t n = 0;
        assert_int_equal(hl_store_event_list(c->st, a.id, &all, after, 3, &arr, &n), HL_OK);
        assert_int_equal(n, page < 2 ? 3 : page == 2 ? 2 : 0);
        for (size_t m = 0; m < n; m++) {
            assert_string_equal(arr[m].uid, v[next--].e.uid);
            after = arr[m].id;
            hl_event_clear(&arr[m]);
        }
        free(arr);
    }
    assert_int_equal(next, -1);
    /* the other app's log */
    struct hl_event *arr = NULL;
    size_t n = 0;
    assert_int_equal(hl_store_event_list(c->st, b.id, &all, 0, 100, &arr, &n), HL_OK);
    assert_int_equal(n, 1);
    assert_string_equal(arr[0].uid, vb.e.uid);
    hl_event_clear(&arr[0]);
    free(arr);
}

/* ---- the dispatcher's side ---- */

/* A claim through a cursor (struct hl_claim.fresh), for what commits just made: the deliveries
 * made, in id order, leased like any claim; busy (skipped) and inactive webhooks' deliveries are
 * left for the claim without a cursor. SQLite: the first claim through a zeroed cursor marks where
 * "new" begins and claims none (those made before are left too). PostgreSQL: by the ids this
 * store's own commits made, the first claim included. Both: nothing leased is claimed twice. */
static void c_claim_fresh(struct ctx *c)
{
    int marks = strcmp(c->be->name, "sqlite") == 0;
    struct hl_claim_cursor cur = {0};
    struct hl_app a;
    struct hook w1, w2;
    struct ev e0, e1, e2;
    struct jobs j = {0};
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &w1);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &w2);
    /* made before the cursor's first claim: new only where the first claim marks nothing */
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &e0), 2);
    int64_t now = hl_now_ms();
    claim_with(c, now, now + HOUR, NULL, 0, &cur, &j);
    assert_int_equal(j.n, marks ? 0 : 2);
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &e1), 2);
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_UPDATED, &e2), 2);
    now = hl_now_ms();

    /* w1 busy: only w2's two, oldest first */
    int64_t busy[] = {w1.id};
    claim_with(c, now, now + HOUR, busy, 1, &cur, &j);
    assert_int_equal(j.n, 2);
    for (size_t i = 0; i < j.n; i++) {
        assert_int_equal(j.v[i].webhook_id, w2.id);
        assert_string_equal(j.v[i].event_uid, i ? e2.e.uid : e1.e.uid);
    }
    assert_true(j.v[0].delivery_id < j.v[1].delivery_id);
    /* asked again, w1 no longer busy: nothing (w2's are leased, w1's were passed over) */
    claim_with(c, now, now + HOUR, NULL, 0, &cur, &j);
    assert_int_equal(j.n, 0);
    /* w1's were left behind for the walk over webhooks (and e0's two, where the first marked) */
    claim_mine(c, now, now + HOUR, NULL, 0, &j);
    assert_int_equal(j.n, marks ? 4 : 2);
    size_t of_w1 = 0;
    for (size_t i = 0; i < j.n; i++)
        of_w1 += j.v[i].webhook_id == w1.id;
    assert_int_equal(of_w1, marks ? 3 : 2);

    /* a full batch stops at its last row; the rest comes next time (a private database holds
     * nothing else) */
    if (!c->be->shared) {
        struct ev e3;
        set_active(c, a.id, &w2, 0, hl_now_ms());
        assert_int_equal(publish(c, a.id, HL_EV_AGENT_DELETED, &e3), 1);
        assert_int_equal(publish(c, a.id, HL_EV_AGENT_DELETED, &e3), 1);
        now = hl_now_ms();
        int64_t seen = 0;
        for (int k = 0; k < 3; k++) {
            struct hl_job *v = NULL;
            size_t n = 0;
            struct hl_claim cl = {.now = now, .lease_until = now + HOUR, .max = 1, .fresh = &cur};
            assert_int_equal(hl_store_claim(c->st, &cl, &v, &n), HL_OK);
            assert_int_equal(n, k < 2 ? 1 : 0);
            if (n) {
                assert_int_equal(v[0].webhook_id, w1.id);
                assert_true(v[0].delivery_id > seen);
                seen = v[0].delivery_id;
                hl_job_clear(&v[0]);
            }
            free(v);
        }
    }
    jobs_free(&j);
}

/* One claim through cl; returns how many of this case's webhooks' deliveries it took (the jobs
 * are freed). */
static size_t claim_count_mine(struct ctx *c, const struct hl_claim *cl)
{
    struct hl_job *v = NULL;
    size_t n = 0, mine = 0;
    assert_int_equal(hl_store_claim(c->st, cl, &v, &n), HL_OK);
    for (size_t i = 0; i < n; i++) {
        mine += is_mine(c, v[i].webhook_id);
        hl_job_clear(&v[i]);
    }
    free(v);
    return mine;
}

/* One claim at now of up to 64 through the cursor cur; see claim_count_mine. */
static size_t claim_fresh_mine(struct ctx *c, int64_t now, struct hl_claim_cursor *cur)
{
    struct hl_claim cl = {.now = now, .lease_until = now + HOUR, .max = 64, .fresh = cur};
    return claim_count_mine(c, &cl);
}

/* A filtered webhook's deliveries (made one by one after the fan-out) reach the claim through a
 * cursor, or it says it left some (cursor.left): on PostgreSQL they were not queued by id, and a
 * node's own NOTIFY does not wake it, so they waited for the sweep. */
static void c_claim_fresh_filtered(struct ctx *c)
{
    struct hl_claim_cursor cur = {0};
    struct hl_app a;
    struct hook w1, w2;
    struct ev e1, e2;
    struct jobs j = {0};
    forget_hooks(c);
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &w1);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &w2);
    struct hl_webhook_patch p = {.set = HL_WP_FILTER, .filter = "{\"event\":[\"agent.created\"]}"};
    assert_int_equal(hl_store_webhook_update(c->st, a.id, w2.uid, &p, hl_now_ms(), NULL), HL_OK);
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &e1), 2);
    int64_t now = hl_now_ms();
    claim_with(c, now, now + HOUR, NULL, 0, &cur, &j); /* where the cursor begins */
    claim_mine(c, now, now + HOUR, NULL, 0, &j);
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &e2), 2);
    now = hl_now_ms();
    size_t mine = claim_fresh_mine(c, now, &cur);
    if (mine != 2 && !cur.left)
        fail_msg("the claim by cursor took %zu of 2 new deliveries and left none", mine);
    jobs_free(&j);
}

/* What a case of the cursor of new deliveries works with: one app with one webhook of the case's,
 * and a cursor that starts now with nothing due before it (fresh_setup). */
struct fresh_case {
    struct hl_claim_cursor cur;
    struct hl_app a;
    struct hook w;
    struct ev e;   /* the last event published */
    struct jobs j; /* the last claim's jobs */
};

static void fresh_setup(struct ctx *c, struct fresh_case *f)
{
    memset(f, 0, sizeof(*f));
    forget_hooks(c);
    make_app(c, &f->a);
    make_hook(c, f->a.id, HL_ENT_ALL, 0, 1, &f->w);
    int64_t now = hl_now_ms();
    claim_with(c, now, now + HOUR, NULL, 0, &f->cur, &f->j); /* where the cursor begins */
    claim_mine(c, now, now + HOUR, NULL, 0, &f->j);
}

/* A change that commits after a claim took its now (the claim waited for the writer) makes a
 * delivery not yet due at that now: the claim through the cursor must not step over it, or no
 * commit's wake-up finds it again and it waits for the next sweep (seen as one-second tails in
 * the noisy-neighbours bench). */
static void c_claim_fresh_late(struct ctx *c)
{
    struct fresh_case f;
    fresh_setup(c, &f);
    int64_t taken = hl_now_ms() - 1000; /* the claim's now, taken before the commit below */
    assert_int_equal(publish(c, f.a.id, HL_EV_AGENT_CREATED, &f.e), 1);
    claim_with(c, taken, taken + HOUR, NULL, 0, &f.cur, &f.j);
    assert_int_equal(f.j.n, 0); /* not due at that now */
    int left = f.cur.left;      /* PostgreSQL: passed over, and said so (the full claim's) */
    int64_t now = hl_now_ms();
    claim_with(c, now, now + HOUR, NULL, 0, &f.cur, &f.j);
    if (f.j.n != 1 && !left)
        fail_msg("the claim by cursor stepped over a delivery made after its now: %zu taken",
                 f.j.n);
    if (strcmp(c->be->name, "sqlite") == 0)
        assert_int_equal(left, 0); /* SQLite's cursor waits for it instead */
    jobs_free(&f.j);
}

/* One webhook's new deliveries, more than HL_CLAIM_PER_WEBHOOK of them, all within its share:
 * one claim through the cursor takes them all (the shares bound a webhook; the per-webhook cap
 * only bounds the walk over webhooks), and leaves none behind for that walk. A claim capped at
 * HL_CLAIM_PER_WEBHOOK cost a webhook under load a second claim (the walk) every turn. */
static void c_claim_fresh_one_hook(struct ctx *c)
{
    struct fresh_case f;
    fresh_setup(c, &f);
    size_t made = HL_CLAIM_PER_WEBHOOK + 8;
    for (size_t i = 0; i < made; i++)
        assert_int_equal(publish(c, f.a.id, HL_EV_AGENT_CREATED, &f.e), 1);
    int64_t now = hl_now_ms();
    size_t mine = claim_fresh_mine(c, now, &f.cur);
    if (mine != made)
        fail_msg("one claim by cursor took %zu of one webhook's %zu new deliveries", mine, made);
    assert_int_equal(f.cur.left, 0);

    /* still bounded by the webhook's share: 5 taken, the rest said to be left */
    for (size_t i = 0; i < made; i++)
        assert_int_equal(publish(c, f.a.id, HL_EV_AGENT_UPDATED, &f.e), 1);
    now = hl_now_ms();
    struct hl_claim cl = {.now = now,
                          .lease_until = now + HOUR,
                          .max = 64,
                          .fresh = &f.cur,
                          .room_new = 100,
                          .wroom_new = 5};
    assert_int_equal(claim_count_mine(c, &cl), 5);
    assert_int_equal(f.cur.left, 1);
    jobs_free(&f.j);
}

/* A retry waiting for its time is not a delivery racing the claim: it must not hold the cursor
 * of new deliveries back (every claim would read again all that was made since). */
static void c_claim_fresh_retry(struct ctx *c)
{
    struct fresh_case f;
    fresh_setup(c, &f);
    assert_int_equal(publish(c, f.a.id, HL_EV_AGENT_CREATED, &f.e), 1);
    int64_t now = hl_now_ms();
    claim_mine(c, now, now + HOUR, NULL, 0, &f.j); /* taken by the walk: the cursor stays below */
    assert_int_equal(f.j.n, 1);
    int64_t retried = f.j.v[0].delivery_id;
    struct hl_attempt at = {.delivery_id = retried,
                            .webhook_id = f.w.id,
                            .started_at = now,
                            .duration_us = 100,
                            .status_code = 500,
                            .error = "HTTP 500",
                            .outcome = HL_OUT_RETRY,
                            .next_attempt_at = now + 5000};
    assert_int_equal(hl_store_record(c->st, &at, 1), HL_OK);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(publish(c, f.a.id, HL_EV_AGENT_UPDATED, &f.e), 1);
        now = hl_now_ms();
        claim_with(c, now, now + HOUR, NULL, 0, &f.cur, &f.j);
        assert_int_equal(f.j.n, 1);
        assert_true(f.j.v[0].delivery_id > retried);
    }
    if (strcmp(c->be->name, "sqlite") == 0 && f.cur.after < retried)
        fail_msg("a retry due in 5 s holds the cursor at %lld, below %lld", (long long)f.cur.after,
                 (long long)retried);
    jobs_free(&f.j);
}

static void c_claim(struct ctx *c)
{
    struct hl_app a;
    struct hook w1, w2;
    struct ev v;
    struct jobs j = {0};
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &w1);
    make_hook(c, a.id, HL_ENT_AGENT, 0, 1, &w2);
    int64_t t0 = hl_now_ms();
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &v), 2);
    int64_t now = hl_now_ms();

    claim_mine(c, now, now + 30 * SEC, NULL, 0, &j);
    assert_int_equal(j.n, 2);
    const struct hook *hooks[2] = {&w1, &w2};
    for (int i = 0; i < 2; i++) {
        const struct hl_job *x = job_of(&j, hooks[i]->id);
        assert_non_null(x);
        assert_true(x->delivery_id > 0);
        assert_true(x->event_id > 0);
        assert_string_equal(x->event_uid, v.e.uid);
        assert_int_equal(x->event_ts, v.e.created_at);
        assert_int_equal(x->attempts, 0);
        assert_true(x->created_at >= t0 && x->created_at <= now);
        assert_string_equal(x->url, HOOK_URL);
        assert_string_equal(x->secret, hooks[i]->secret);
        assert_int_equal(x->prev.n, 0);
        assert_int_equal(x->payload_len, v.e.payload_len);
        assert_memory_equal(x->payload, v.e.payload, v.e.payload_len);
    }
    assert_int_not_equal(j.v[0].delivery_id, j.v[1].delivery_id);
    assert_int_equal(j.v[0].event_id, j.v[1].event_id);
    int64_t d1 = job_of(&j, w1.id)->delivery_id, d2 = job_of(&j, w2.id)->delivery_id;

    /* leased: not claimed again before lease_until, however often asked */
    static const int64_t early[] = {0, 1, 10 * SEC, 30 * SEC - 1};
    for (size_t i = 0; i < sizeof(early) / sizeof(early[0]); i++) {
        claim_mine(c, now + early[i], now + HOUR, NULL, 0, &j);
        assert_int_equal(j.n, 0);
    }
    /* due again when the lease ends; a skipped webhook's delivery stays where it is */
    int64_t skip[] = {w1.id, 999999999};
    claim_mine(c, now + 30 * SEC, now + 90 * SEC, skip, 2, &j);
    assert_int_equal(j.n, 1);
    assert_int_equal(j.v[0].delivery_id, d2);
    claim_mine(c, now + 60 * SEC, now + 90 * SEC, NULL, 0, &j);
    assert_int_equal(j.n, 1);
    assert_int_equal(j.v[0].delivery_id, d1);
    /* skipping both leaves both */
    int64_t both[] = {w2.id, w1.id};
    claim_mine(c, now + 2 * MIN, now + 3 * MIN, both, 2, &j);
    assert_int_equal(j.n, 0);
    claim_mine(c, now + 2 * MIN, now + 3 * MIN, NULL, 0, &j);
    assert_int_equal(j.n, 2);

    /* inactive webhooks are skipped (their deliveries are parked) */
    set_active(c, a.id, &w2, 0, hl_now_ms());
    claim_mine(c, now + 4 * MIN, now + 5 * MIN, NULL, 0, &j);
    assert_int_equal(j.n, 1);
    assert_int_equal(j.v[0].webhook_id, w1.id);

    /* at most max at a time (a private database holds nothing else) */
    if (!c->be->shared) {
        struct ev v2;
        set_active(c, a.id, &w2, 1, hl_now_ms());
        assert_int_equal(publish(c, a.id, HL_EV_AGENT_UPDATED, &v2), 2);
        int64_t t = now + 10 * MIN;
        int64_t seen[3] = {0};
        for (int k = 0; k < 3; k++) {
            struct hl_job *arr = NULL;
            size_t n = 0;
            struct hl_claim cl = {.now = t, .lease_until = t + MIN, .max = 1};
            assert_int_equal(hl_store_claim(c->st, &cl, &arr, &n), HL_OK);
            assert_true(n <= 1);
            if (n)
                seen[k] = arr[0].delivery_id;
            for (size_t m = 0; m < n; m++)
                hl_job_clear(&arr[m]);
            free(arr);
        }
        /* four are due (d1, d2 resumed, two new ones): one per call, never the same twice */
        assert_true(seen[0] && seen[1] && seen[2]);
        assert_true(seen[0] != seen[1] && seen[1] != seen[2] && seen[0] != seen[2]);
    }
    jobs_free(&j);
}

/* How many of j's jobs are app's (webhook 0) or webhook's. */
static size_t count_jobs(const struct jobs *j, int64_t app, int64_t webhook)
{
    size_t n = 0;
    for (size_t i = 0; i < j->n; i++)
        n += webhook ? j->v[i].webhook_id == webhook : j->v[i].app_id == app;
    return n;
}

/* Claims within fair shares (struct hl_claim): apps left alone, each app's room and each
 * webhook's, and the apps (and an app's webhooks) in turn rather than the oldest due first. App
 * a's twelve deliveries are all older than app b's one. On a shared database other runs' rows
 * may take part of a claim: the bounds hold, the exact counts are checked on a private one. */
static void c_claim_shares(struct ctx *c)
{
    struct hl_app a, b;
    struct hook wa[3], wb;
    struct ev v;
    struct jobs j = {0};
    make_app(c, &a);
    make_app(c, &b);
    for (int i = 0; i < 3; i++)
        make_hook(c, a.id, HL_ENT_ALL, 0, 1, &wa[i]);
    make_hook(c, b.id, HL_ENT_ALL, 0, 1, &wb);
    for (int i = 0; i < 4; i++)
        assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &v), 3);
    assert_int_equal(publish(c, b.id, HL_EV_AGENT_CREATED, &v), 1);
    int64_t t = hl_now_ms() + MIN, exact = !c->be->shared;

    /* the apps in turn: of two jobs, one is b's, however many older ones a has; then a's
     * webhooks in turn */
    if (exact) {
        struct hl_claim cl = {.now = t, .lease_until = t + 30 * SEC, .max = 2};
        claim_keep(c, &cl, &j);
        assert_int_equal(j.n, 2);
        assert_int_equal(count_jobs(&j, 0, wb.id), 1);
        jobs_free(&j);
        t += MIN;
        cl = (struct hl_claim){.now = t, .lease_until = t + 30 * SEC, .max = 4};
        claim_keep(c, &cl, &j);
        assert_int_equal(j.n, 4);
        for (int i = 0; i < 3; i++)
            assert_int_equal(count_jobs(&j, 0, wa[i].id), 1);
        jobs_free(&j);
        t += MIN;
    }

    /* an app left alone gets nothing; the others get theirs */
    int64_t alone[] = {a.id};
    struct hl_claim cl = {
        .now = t, .lease_until = t + 30 * SEC, .max = 64, .skip_apps = alone, .nskip_apps = 1};
    claim_all(c, &cl, &j);
    assert_int_equal(j.n, 1);
    assert_int_equal(j.v[0].webhook_id, wb.id);
    assert_int_equal(j.v[0].app_id, b.id);
    jobs_free(&j);
    t += MIN;

    /* each app within its room (a: 2, any other: 1) claim after claim, until all are claimed */
    int64_t room_apps[] = {a.id}, rooms[] = {2};
    cl = (struct hl_claim){.now = t,
                           .lease_until = t + 30 * SEC,
                           .max = 64,
                           .room_apps = room_apps,
                           .rooms = rooms,
                           .nrooms = 1,
                           .room_new = 1};
    struct jobs all = {0};
    for (int round = 0; round < 100; round++) {
        size_t n = claim_keep(c, &cl, &j);
        assert_true(count_jobs(&j, a.id, 0) <= 2);
        assert_true(count_jobs(&j, b.id, 0) <= 1);
        if (exact && round == 0) {
            assert_int_equal(count_jobs(&j, a.id, 0), 2);
            assert_int_equal(count_jobs(&j, b.id, 0), 1);
        }
        all.n += j.n;
        jobs_free(&j);
        if (n == 0)
            break;
    }
    assert_int_equal(all.n, 13); /* nothing lost on the way */
    t += MIN;

    /* each webhook within its room (wa[0]: 1, any other: 2) */
    int64_t room_webhooks[] = {wa[0].id}, wrooms[] = {1};
    cl = (struct hl_claim){.now = t,
                           .lease_until = t + 30 * SEC,
                           .max = 64,
                           .room_webhooks = room_webhooks,
                           .wrooms = wrooms,
                           .nwrooms = 1,
                           .wroom_new = 2};
    claim_keep(c, &cl, &j);
    assert_true(count_jobs(&j, 0, wa[0].id) <= 1);
    for (int i = 1; i < 3; i++)
        assert_true(count_jobs(&j, 0, wa[i].id) <= 2);
    assert_true(count_jobs(&j, 0, wb.id) <= 1);
    if (exact)
        assert_int_equal(j.n, 6);
    jobs_free(&j);
    t += MIN;

    /* a claim of new deliveries (through a cursor) keeps the rooms too */
    struct hl_claim_cursor cur = {0};
    claim_with(c, t, t + 30 * SEC, NULL, 0, &cur, &j); /* marks where "new" begins */
    jobs_free(&j);
    for (int i = 0; i < 2; i++)
        assert_int_equal(publish(c, a.id, HL_EV_AGENT_UPDATED, &v), 3);
    assert_int_equal(publish(c, b.id, HL_EV_AGENT_UPDATED, &v), 1);
    t = hl_now_ms() + 10 * MIN;
    cl = (struct hl_claim){.now = t,
                           .lease_until = t + 30 * SEC,
                           .max = 64,
                           .fresh = &cur,
                           .room_apps = room_apps,
                           .rooms = rooms,
                           .nrooms = 1,
                           .room_new = 1};
    claim_keep(c, &cl, &j);
    assert_true(count_jobs(&j, a.id, 0) <= 2);
    assert_true(count_jobs(&j, b.id, 0) <= 1);
    jobs_free(&j);
}

/* Webhooks per app (--max-webhooks): the store refuses the one past the limit, counts each app
 * apart, and forgets deleted ones. */
static void c_webhook_limit(struct ctx *c)
{
    struct hl_app a, b;
    make_app(c, &a);
    make_app(c, &b);
    char url[] = HOOK_URL;
    struct hl_webhook w = {.url = url, .entities = HL_ENT_ALL, .active = 1};
    assert_int_equal(hl_secret_new(w.secret, sizeof(w.secret)), HL_OK);
    char first[HL_ID_MAX] = "";
    for (int i = 0; i < 3; i++) {
        new_uid("webhook-", w.uid);
        w.app_id = a.id;
        w.created_at = w.updated_at = hl_now_ms();
        assert_int_equal(hl_store_webhook_create(c->st, &w, 2), i < 2 ? HL_OK : HL_ETOOBIG);
        if (i == 0)
            snprintf(first, sizeof(first), "%s", w.uid);
    }
    struct hl_webhook got;
    assert_int_equal(hl_store_webhook_get(c->st, a.id, w.uid, &got), HL_ENOTFOUND);
    new_uid("webhook-", w.uid);
    w.app_id = b.id;
    assert_int_equal(hl_store_webhook_create(c->st, &w, 2), HL_OK);
    /* 0: no limit */
    new_uid("webhook-", w.uid);
    w.app_id = a.id;
    assert_int_equal(hl_store_webhook_create(c->st, &w, 0), HL_OK);
    /* a has 3 now: deleting one leaves 2, still the limit; deleting two makes room */
    assert_int_equal(hl_store_webhook_delete(c->st, a.id, first, hl_now_ms()), HL_OK);
    new_uid("webhook-", w.uid);
    assert_int_equal(hl_store_webhook_create(c->st, &w, 2), HL_ETOOBIG);
    assert_int_equal(hl_store_webhook_create(c->st, &w, 3), HL_OK);
    /* an app that does not exist has no webhooks to count */
    new_uid("webhook-", w.uid);
    w.app_id = b.id + 1000000;
    assert_int_equal(hl_store_webhook_create(c->st, &w, 2), HL_ENOTFOUND);
}

/* Creates a context file of size bytes in app's context ctx; returns its uid in uid. */
static void make_file(struct ctx *c, const struct res *ctx, int64_t size, char *uid)
{
    struct res f;
    struct ev v;
    char path[HL_ID_MAX + 8];
    res_init(&f, ctx->r.app_id, HL_ENT_CONTEXTFILE, NULL, ctx->r.uid, "tenant-1", "{\"f\":1}",
             hl_now_ms());
    snprintf(path, sizeof(path), "files/%s", f.r.uid);
    struct hl_file_rec rec = {.path = path, .size = size, .sha256 = "00"};
    ev_init(&v, f.r.app_id, HL_EV_CONTEXTFILE_CREATED, f.tenant, f.r.uid, hl_now_ms());
    struct hl_change ch = {.op = HL_OP_CREATE, .res = &f.r, .ev = &v.e, .file = &rec};
    int64_t made = 0;
    assert_int_equal(hl_store_commit(c->st, &ch, 1, NULL, &made), HL_OK);
    memcpy(uid, f.r.uid, HL_ID_MAX);
}

/* The bytes of an app's context files (--max-app-storage), app by app; a deleted file's no
 * longer count. */
static void c_app_storage(struct ctx *c)
{
    struct hl_app a, b, empty;
    struct res ca, cb;
    struct ev v;
    int64_t made = 0;
    make_app(c, &a);
    make_app(c, &b);
    make_app(c, &empty);
    res_init(&ca, a.id, HL_ENT_CONTEXT, NULL, NULL, "tenant-1", "{\"c\":1}", hl_now_ms());
    res_init(&cb, b.id, HL_ENT_CONTEXT, NULL, NULL, "tenant-1", "{\"c\":1}", hl_now_ms());
    assert_int_equal(change(c, HL_OP_CREATE, &ca, 0, &v, &made), HL_OK);
    assert_int_equal(change(c, HL_OP_CREATE, &cb, 0, &v, &made), HL_OK);
    char f1[HL_ID_MAX], f2[HL_ID_MAX], f3[HL_ID_MAX];
    make_file(c, &ca, 100, f1);
    make_file(c, &ca, 250, f2);
    make_file(c, &cb, 7, f3);
    int64_t bytes = -1;
    assert_int_equal(hl_store_app_storage(c->st, a.id, &bytes), HL_OK);
    assert_int_equal(bytes, 350);
    assert_int_equal(hl_store_app_storage(c->st, b.id, &bytes), HL_OK);
    assert_int_equal(bytes, 7);
    assert_int_equal(hl_store_app_storage(c->st, empty.id, &bytes), HL_OK);
    assert_int_equal(bytes, 0);
    struct res gone;
    res_init(&gone, a.id, HL_ENT_CONTEXTFILE, f1, ca.r.uid, "tenant-1", "{\"f\":1}", hl_now_ms());
    assert_int_equal(change(c, HL_OP_DELETE, &gone, 1, &v, &made), HL_OK);
    assert_int_equal(hl_store_app_storage(c->st, a.id, &bytes), HL_OK);
    assert_int_equal(bytes, 250);
}

struct rec_case {
    const char *name;
    enum hl_outcome outcome;
    int status_code;
    const char *error;
    int want_status; /* enum hl_delivery_status of the attempted delivery */
    int disables;    /* the webhook ends disabled */
};

static const struct rec_case rec_cases[] = {
    {"success", HL_OUT_SUCCESS, 200, NULL, HL_DS_SUCCEEDED, 0},
    {"retry", HL_OUT_RETRY, 503, "HTTP 503", HL_DS_FAILING, 0},
    {"failed", HL_OUT_FAILED, 500, "HTTP 500", HL_DS_FAILED, 0},
    {"timeout, no answer", HL_OUT_RETRY, 0, "timed out after 5 s", HL_DS_FAILING, 0},
    {"gone", HL_OUT_GONE, 410, "HTTP 410", HL_DS_FAILED, 1},
};

static void c_record(struct ctx *c)
{
    struct hl_app a;
    struct jobs j = {0};
    for (size_t i = 0; i < sizeof(rec_cases) / sizeof(rec_cases[0]); i++) {
        const struct rec_case *rc = &rec_cases[i];
        struct hook h;
        struct ev v1, v2;
        print_message("record: %s\n", rc->name);
        /* a fresh app and webhook per case: earlier cases' deliveries stay out of its claims */
        forget_hooks(c);
        make_app(c, &a);
        make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
        assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &v1), 1);
        assert_int_equal(publish(c, a.id, HL_EV_AGENT_UPDATED, &v2), 1);
        int64_t now = hl_now_ms();
        claim_mine(c, now, now + HOUR, NULL, 0, &j);
        assert_int_equal(j.n, 2);
        int64_t d1 = 0, d2 = 0;
        for (size_t k = 0; k < 2; k++) {
            if (strcmp(j.v[k].event_uid, v1.e.uid) == 0)
                d1 = j.v[k].delivery_id;
            else
                d2 = j.v[k].delivery_id;
        }
        assert_true(d1 && d2);

        int64_t started = now - 1500;
        struct hl_attempt at = {
            .delivery_id = d1,
            .webhook_id = h.id,
            .started_at = started,
            .duration_us = 1234,
            .status_code = rc->status_code,
            .error = rc->error,
            .response = "{\"received\":true}",
            .response_len = 17,
            .outcome = rc->outcome,
            .next_attempt_at = now + 5 * SEC,
        };
        /* what the outcome policy says with the default 5 days */
        if (rc->outcome == HL_OUT_GONE) {
            snprintf(at.disable_reason, sizeof(at.disable_reason), "endpoint answered 410 Gone");
        } else if (rc->outcome != HL_OUT_SUCCESS) {
            at.disable_failing_since = now - 5 * DAY;
            snprintf(at.disable_reason, sizeof(at.disable_reason), "failing for 5 days");
        }
        assert_int_equal(hl_store_record(c->st, &at, 1), HL_OK);
        expect_delivery(c, a.id, d1, rc->want_status, 1);

        struct hl_webhook w;
        get_hook(c, a.id, &h, &w);
        assert_int_equal(w.last_triggered_at, started);
        if (rc->outcome == HL_OUT_SUCCESS) {
            assert_int_equal(w.last_success_at, started);
            assert_int_equal(w.last_failure_at, 0);
            assert_int_equal(w.failing_since, 0);
        } else {
            assert_int_equal(w.last_success_at, 0);
            assert_int_equal(w.last_failure_at, started);
            assert_int_equal(w.failing_since, started);
        }
        assert_int_equal(w.active, !rc->disables);
        if (rc->disables) {
            assert_true(w.disabled_at > 0);
            assert_non_null(w.disabled_reason);
            assert_string_equal(w.disabled_reason, at.disable_reason);
        } else {
            assert_int_equal(w.disabled_at, 0);
            assert_null(w.disabled_reason);
        }
        hl_webhook_clear(&w);

        /* what a later claim (leases over) finds */
        claim_mine(c, now + 2 * HOUR, now + 3 * HOUR, NULL, 0, &j);
        if (rc->disables) {
            /* disabled: the other pending delivery is parked, nothing is due */
            assert_int_equal(j.n, 0);
            expect_delivery(c, a.id, d2, HL_DS_PAUSED, 0);
        } else if (rc->outcome == HL_OUT_RETRY) {
            /* the retried delivery and the untouched one; attempts counted */
            assert_int_equal(j.n, 2);
            for (size_t k = 0; k < 2; k++)
                assert_int_equal(j.v[k].attempts, j.v[k].delivery_id == d1 ? 1 : 0);
        } else {
            /* done for good: only the untouched delivery is due */
            assert_int_equal(j.n, 1);
            assert_int_equal(j.v[0].delivery_id, d2);
            assert_int_equal(j.v[0].attempts, 0);
        }

        if (rc->outcome == HL_OUT_RETRY) {
            /* not due before next_attempt_at, due at it */
            struct hl_attempt again2 = at;
            again2.started_at = now;
            again2.next_attempt_at = now + 10 * MIN;
            assert_int_equal(hl_store_record(c->st, &again2, 1), HL_OK);
            claim_mine(c, now + 10 * MIN - 1, now + 11 * MIN, NULL, 0, &j);
            assert_int_equal(j.n, 0);
            claim_mine(c, now + 10 * MIN, now + 11 * MIN, NULL, 0, &j);
            assert_int_equal(j.n, 1);
            assert_int_equal(j.v[0].delivery_id, d1);
            assert_int_equal(j.v[0].attempts, 2);
            /* the run of failures still starts at the first one */
            get_hook(c, a.id, &h, &w);
            assert_int_equal(w.failing_since, started);
            assert_int_equal(w.last_failure_at, now);
            assert_int_equal(w.last_triggered_at, now);
            hl_webhook_clear(&w);
        }

        if (rc->disables) {
            /* enabled again: reason cleared, the parked delivery due again */
            int64_t t = hl_now_ms();
            set_active(c, a.id, &h, 1, t);
            get_hook(c, a.id, &h, &w);
            assert_int_equal(w.active, 1);
            assert_int_equal(w.disabled_at, 0);
            assert_null(w.disabled_reason);
            hl_webhook_clear(&w);
            expect_delivery(c, a.id, d2, HL_DS_PENDING, 0);
            claim_mine(c, t + 4 * HOUR, t + 5 * HOUR, NULL, 0, &j);
            assert_int_equal(j.n, 1);
            assert_int_equal(j.v[0].delivery_id, d2);
        }
    }
    jobs_free(&j);
}

/* A batch of attempts in one call; a success ends a run of failures. */
static void c_record_batch(struct ctx *c)
{
    struct hl_app a;
    struct hook h;
    struct ev v[3];
    struct jobs j = {0};
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    for (int i = 0; i < 3; i++)
        assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &v[i]), 1);
    int64_t now = hl_now_ms();
    claim_mine(c, now, now + HOUR, NULL, 0, &j);
    assert_int_equal(j.n, 3);
    struct hl_attempt at[3];
    for (int i = 0; i < 3; i++) {
        at[i] = (struct hl_attempt){
            .delivery_id = j.v[i].delivery_id,
            .webhook_id = h.id,
            .started_at = now - 3000 + i * 1000,
            .duration_us = 10,
            .status_code = 500,
            .error = "HTTP 500",
            .outcome = HL_OUT_RETRY,
            .next_attempt_at = now + MIN,
        };
    }
    assert_int_equal(hl_store_record(c->st, at, 2), HL_OK);
    struct hl_webhook w;
    get_hook(c, a.id, &h, &w);
    assert_int_equal(w.failing_since, now - 3000);
    assert_int_equal(w.last_failure_at, now - 2000);
    assert_int_equal(w.last_triggered_at, now - 2000);
    hl_webhook_clear(&w);

    at[2].outcome = HL_OUT_SUCCESS;
    at[2].status_code = 204;
    at[2].error = NULL;
    assert_int_equal(hl_store_record(c->st, &at[2], 1), HL_OK);
    get_hook(c, a.id, &h, &w);
    assert_int_equal(w.failing_since, 0);
    assert_int_equal(w.last_success_at, now - 1000);
    assert_int_equal(w.last_failure_at, now - 2000);
    assert_int_equal(w.last_triggered_at, now - 1000);
    assert_int_equal(w.active, 1);
    hl_webhook_clear(&w);
    expect_delivery(c, a.id, at[0].delivery_id, HL_DS_FAILING, 1);
    expect_delivery(c, a.id, at[2].delivery_id, HL_DS_SUCCEEDED, 1);
    jobs_free(&j);
}

struct disable_case {
    const char *name;
    int64_t failing_for;   /* how long ago the first failure started */
    int64_t disable_after; /* the attempt's disable_failing_since is now - this (0: 0) */
    int disabled;
};

static const struct disable_case disable_cases[] = {
    {"failing longer than the limit", 6 * DAY, 5 * DAY, 1},
    {"failing just past the limit", 5 * DAY + MIN, 5 * DAY, 1},
    {"failing less than the limit", 4 * DAY, 5 * DAY, 0},
    {"no limit never disables", 30 * DAY, 0, 0},
    {"short limit", 2 * SEC, 1 * SEC, 1},
};

static void c_auto_disable(struct ctx *c)
{
    struct hl_app a;
    struct jobs j = {0};
    for (size_t i = 0; i < sizeof(disable_cases) / sizeof(disable_cases[0]); i++) {
        const struct disable_case *dc = &disable_cases[i];
        struct hook h;
        struct ev v1, v2;
        print_message("auto-disable: %s\n", dc->name);
        /* a fresh app and webhook per case: earlier cases' deliveries stay out of its claims */
        forget_hooks(c);
        make_app(c, &a);
        make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
        assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &v1), 1);
        assert_int_equal(publish(c, a.id, HL_EV_AGENT_UPDATED, &v2), 1);
        int64_t now = hl_now_ms();
        claim_mine(c, now, now + HOUR, NULL, 0, &j);
        assert_int_equal(j.n, 2);
        struct hl_attempt at = {
            .delivery_id = j.v[0].delivery_id,
            .webhook_id = h.id,
            .started_at = now - dc->failing_for,
            .status_code = 0,
            .error = "connection refused",
            .outcome = HL_OUT_RETRY,
            .next_attempt_at = now + MIN,
            .disable_failing_since = dc->disable_after ? now - dc->disable_after : 0,
            .disable_reason = "failing continuously for a while",
        };
        int64_t other = j.v[1].delivery_id;
        assert_int_equal(hl_store_record(c->st, &at, 1), HL_OK);
        struct hl_webhook w;
        get_hook(c, a.id, &h, &w);
        assert_int_equal(w.failing_since, now - dc->failing_for);
        assert_int_equal(w.active, !dc->disabled);
        if (dc->disabled) {
            assert_true(w.disabled_at >= now);
            assert_non_null(w.disabled_reason);
            assert_string_equal(w.disabled_reason, at.disable_reason);
            expect_delivery(c, a.id, other, HL_DS_PAUSED, 0);
            expect_delivery(c, a.id, at.delivery_id, HL_DS_PAUSED, 1);
        } else {
            assert_int_equal(w.disabled_at, 0);
            assert_null(w.disabled_reason);
            expect_delivery(c, a.id, other, HL_DS_PENDING, 0);
        }
        hl_webhook_clear(&w);
        claim_mine(c, now + 2 * HOUR, now + 3 * HOUR, NULL, 0, &j);
        assert_int_equal(j.n, dc->disabled ? 0 : 2);
    }
    jobs_free(&j);
}

/* ---- operational events (issue 21) ---- */

/* The operational events of type t about webhook uid in the app's event log. */
static int op_events(struct ctx *c, int64_t app_id, int t, const char *uid)
{
    struct hl_event_filter f = {.type = t};
    struct hl_event *v = NULL;
    size_t n = 0;
    int found = 0;
    assert_int_equal(hl_store_event_list(c->st, app_id, &f, 0, 1000, &v, &n), HL_OK);
    char about[64];
    snprintf(about, sizeof(about), "\"data\":{\"uid\":\"%s\"", uid);
    for (size_t i = 0; i < n; i++) {
        found += strstr(v[i].payload, about) != NULL;
        hl_event_clear(&v[i]);
    }
    free(v);
    return found;
}

/* Records one attempt of job j ending in outcome (RETRY: due again in a minute). */
static void record_op(struct ctx *c, const struct hl_job *j, enum hl_outcome outcome, int64_t at)
{
    struct hl_attempt a = {.delivery_id = j->delivery_id,
                           .webhook_id = j->webhook_id,
                           .started_at = at,
                           .status_code = outcome == HL_OUT_SUCCESS ? 200
                                          : outcome == HL_OUT_GONE  ? 410
                                                                    : 500,
                           .outcome = outcome,
                           .next_attempt_at = outcome == HL_OUT_RETRY ? at + MIN : 0};
    if (outcome == HL_OUT_GONE)
        snprintf(a.disable_reason, sizeof(a.disable_reason), "endpoint answered 410 Gone");
    assert_int_equal(hl_store_record(c->st, &a, 1), HL_OK);
}

/* An expected count of each operational event about one webhook. */
static void expect_ops(struct ctx *c, int64_t app_id, const char *uid, int failing, int recovered,
                       int disabled, int exhausted, int silent)
{
    assert_int_equal(op_events(c, app_id, HL_OPEV_ENDPOINT_FAILING, uid), failing);
    assert_int_equal(op_events(c, app_id, HL_OPEV_ENDPOINT_RECOVERED, uid), recovered);
    assert_int_equal(op_events(c, app_id, HL_OPEV_ENDPOINT_DISABLED, uid), disabled);
    assert_int_equal(op_events(c, app_id, HL_OPEV_DELIVERY_EXHAUSTED, uid), exhausted);
    assert_int_equal(op_events(c, app_id, HL_OPEV_ENDPOINT_SILENT, uid), silent);
}

static void c_operational(struct ctx *c)
{
    struct hl_app a;
    struct hook h;
    struct ev v[3];
    struct jobs j = {0};
    forget_hooks(c);
    make_app(c, &a);
    hl_store_on_op_event(c->st, hl_op_event_make);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    char ops_url[] = "https://ops.example/alerts";
    struct hl_webhook o = {.app_id = a.id,
                           .url = ops_url,
                           .event_types = HL_OPEV_ALL,
                           .active = 1,
                           .kind = HL_WK_OPERATIONAL};
    new_uid("webhook-", o.uid);
    assert_int_equal(hl_secret_new(o.secret, sizeof(o.secret)), HL_OK);
    assert_int_equal(hl_store_webhook_create(c->st, &o, 0), HL_OK);
    c->hooks[c->nhooks++] = o.id;
    /* No resource event reaches the operational webhook; lists keep the kinds apart. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &v[i]), 1);
    struct hl_webhook *ws = NULL;
    size_t n = 0;
    assert_int_equal(hl_store_webhook_list(c->st, a.id, 0, 100, &ws, &n), HL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ws[0].id, h.id);
    hl_webhook_clear(&ws[0]);
    free(ws);
    assert_int_equal(hl_store_webhook_list_kind(c->st, a.id, HL_WK_OPERATIONAL, 0, 100, &ws, &n),
                     HL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ws[0].kind, HL_WK_OPERATIONAL);
    hl_webhook_clear(&ws[0]);
    free(ws);

    int64_t now = hl_now_ms();
    claim_mine(c, now, now + HOUR, NULL, 0, &j);
    assert_int_equal(j.n, 3);
    /* Two failures: one spell, one endpoint.failing; a success ends it. */
    record_op(c, &j.v[0], HL_OUT_RETRY, now);
    expect_ops(c, a.id, h.uid, 1, 0, 0, 0, 0);
    record_op(c, &j.v[1], HL_OUT_RETRY, now + 1);
    expect_ops(c, a.id, h.uid, 1, 0, 0, 0, 0);
    record_op(c, &j.v[0], HL_OUT_SUCCESS, now + 2);
    expect_ops(c, a.id, h.uid, 1, 1, 0, 0, 0);
    record_op(c, &j.v[2], HL_OUT_SUCCESS, now + 3);
    expect_ops(c, a.id, h.uid, 1, 1, 0, 0, 0);
    /* The last attempt of a delivery fails: a new spell and the delivery exhausted. */
    record_op(c, &j.v[1], HL_OUT_FAILED, now + 4);
    expect_ops(c, a.id, h.uid, 2, 1, 0, 1, 0);

    /* The operational webhook's own failures make no event. */
    claim_mine(c, now + 2 * HOUR, now + 3 * HOUR, NULL, 0, &j);
    assert_int_equal(j.n, 4); /* to o: failing, recovered, failing, exhausted */
    for (size_t i = 0; i < j.n; i++) {
        assert_int_equal(j.v[i].webhook_id, o.id);
        record_op(c, &j.v[i], i % 2 ? HL_OUT_FAILED : HL_OUT_RETRY, now + 5);
    }
    expect_ops(c, a.id, o.uid, 0, 0, 0, 0, 0);

    /* Silence: once, and again only after a success. */
    struct hl_webhook_patch p = {
        .set = HL_WP_SILENCE | HL_WP_EXPECT_EVENTS, .silence_ms = MIN, .expect_events = 1};
    assert_int_equal(hl_store_webhook_update(c->st, a.id, h.uid, &p, now, NULL), HL_OK);
    int64_t fired = -1;
    assert_int_equal(hl_store_silence_sweep(c->st, now + 30 * SEC, &fired), HL_OK);
    assert_int_equal(fired, 0);
    assert_int_equal(hl_store_silence_sweep(c->st, now + 2 * MIN, &fired), HL_OK);
    assert_int_equal(fired, 1);
    assert_int_equal(hl_store_silence_sweep(c->st, now + 10 * MIN, &fired), HL_OK);
    assert_int_equal(fired, 0);
    expect_ops(c, a.id, h.uid, 2, 1, 0, 1, 1);
    struct ev w;
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_UPDATED, &w), 1);
    claim_mine(c, now + 11 * MIN, now + 12 * MIN, NULL, 0, &j);
    const struct hl_job *mine = job_of(&j, h.id);
    assert_non_null(mine);
    record_op(c, mine, HL_OUT_SUCCESS, now + 11 * MIN);
    assert_int_equal(hl_store_silence_sweep(c->st, now + 11 * MIN + 30 * SEC, &fired), HL_OK);
    assert_int_equal(fired, 0);
    assert_int_equal(hl_store_silence_sweep(c->st, now + 13 * MIN, &fired), HL_OK);
    assert_int_equal(fired, 1);
    /* That success also ended the failing spell; a 410 disables, with no new spell. */
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_DELETED, &w), 1);
    claim_mine(c, now + 14 * MIN, now + 15 * MIN, NULL, 0, &j);
    mine = job_of(&j, h.id);
    assert_non_null(mine);
    record_op(c, mine, HL_OUT_GONE, now + 14 * MIN);
    expect_ops(c, a.id, h.uid, 2, 2, 1, 1, 2);
    jobs_free(&j);
    hl_store_on_op_event(c->st, NULL);
}

/* Records one attempt of job j at t: a failure (retried a minute later) or a success, with the
 * circuit breaker's word on it (opens after 3 failures; next probe at probe_at). */
static void record_breaker(struct ctx *c, const struct hl_job *j, int64_t t, int ok,
                           int64_t probe_at)
{
    struct hl_attempt at = {.delivery_id = j->delivery_id,
                            .webhook_id = j->webhook_id,
                            .started_at = t,
                            .status_code = ok ? 200 : 500,
                            .error = ok ? NULL : "HTTP 500",
                            .outcome = ok ? HL_OUT_SUCCESS : HL_OUT_RETRY,
                            .next_attempt_at = ok ? 0 : t + MIN,
                            .breaker_after = 3,
                            .breaker_probe = j->breaker_opened_at != 0,
                            .breaker_probe_at = ok ? 0 : probe_at};
    assert_int_equal(hl_store_record(c->st, &at, 1), HL_OK);
}

static int64_t breaker_of(struct ctx *c, int64_t app_id, const struct hook *h)
{
    struct hl_webhook w;
    get_hook(c, app_id, h, &w);
    int64_t at = w.breaker_opened_at;
    hl_webhook_clear(&w);
    return at;
}

/* The circuit breaker as the store keeps it: it opens at the third failure in a row; then a
 * claim gives one probe of the webhook's deliveries once its time has come, and none while that
 * probe is leased; a failed probe sets the next one's time; a successful one closes it and
 * every waiting delivery is claimed at once. */
static void c_breaker(struct ctx *c)
{
    struct hl_app a;
    struct hook h;
    struct ev v;
    struct jobs j = {0}, probe = {0};
    forget_hooks(c);
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    for (int i = 0; i < 6; i++)
        assert_int_equal(publish(c, a.id, HL_EV_AGENT_UPDATED, &v), 1);
    int64_t now = hl_now_ms();
    claim_mine(c, now, now + SEC, NULL, 0, &j);
    assert_int_equal(j.n, 6);
    record_breaker(c, &j.v[0], now, 0, now + 10 * SEC);
    record_breaker(c, &j.v[1], now, 0, now + 10 * SEC);
    assert_int_equal(breaker_of(c, a.id, &h), 0);
    record_breaker(c, &j.v[2], now, 1, 0); /* a success starts the count again */
    record_breaker(c, &j.v[3], now, 0, now + 10 * SEC);
    record_breaker(c, &j.v[4], now, 0, now + 10 * SEC);
    assert_int_equal(breaker_of(c, a.id, &h), 0);
    record_breaker(c, &j.v[5], now, 0, now + 10 * SEC);
    assert_true(breaker_of(c, a.id, &h) >= now);

    /* five wait (due at now + MIN); before the probe's time nothing is claimed */
    claim_mine(c, now + 2 * MIN, now + 2 * MIN + SEC, NULL, 0, &probe);
    assert_int_equal(probe.n, 1);
    assert_true(probe.v[0].breaker_opened_at != 0);
    claim_mine(c, now + 2 * MIN, now + 3 * MIN, NULL, 0, &j); /* leased: none more */
    assert_int_equal(j.n, 0);
    /* the probe fails: the next goes at its time, not before */
    record_breaker(c, &probe.v[0], now + 2 * MIN, 0, now + 10 * MIN);
    claim_mine(c, now + 5 * MIN, now + 6 * MIN, NULL, 0, &j);
    assert_int_equal(j.n, 0);
    claim_mine(c, now + 11 * MIN, now + 11 * MIN + SEC, NULL, 0, &probe);
    assert_int_equal(probe.n, 1);
    assert_true(breaker_of(c, a.id, &h) >= now);
    /* it succeeds: closed, and the other four are claimed together */
    record_breaker(c, &probe.v[0], now + 11 * MIN, 1, 0);
    assert_int_equal(breaker_of(c, a.id, &h), 0);
    claim_mine(c, now + 11 * MIN, now + 12 * MIN, NULL, 0, &j);
    assert_int_equal(j.n, 4);
    jobs_free(&j);
    jobs_free(&probe);
}

/* Publishes an event about resource uid; returns the deliveries made. */
static int64_t publish_about(struct ctx *c, int64_t app_id, const char *uid, struct ev *v)
{
    ev_init(v, app_id, HL_EV_AGENT_UPDATED, "tenant-1", uid, hl_now_ms());
    int64_t made = 0;
    assert_int_equal(publish_ev(c, v, 0, &made), HL_OK);
    return made;
}

/* Records job j's attempt at t as out (a retry is due a minute later). */
static void record_as(struct ctx *c, const struct hl_job *j, int64_t t, enum hl_outcome out)
{
    struct hl_attempt at = {.delivery_id = j->delivery_id,
                            .webhook_id = j->webhook_id,
                            .started_at = t,
                            .status_code = out == HL_OUT_SUCCESS ? 200 : 500,
                            .error = out == HL_OUT_SUCCESS ? NULL : "HTTP 500",
                            .outcome = out,
                            .next_attempt_at = out == HL_OUT_RETRY ? t + MIN : 0};
    assert_int_equal(hl_store_record(c->st, &at, 1), HL_OK);
}

/* ordering = resource: a claim gives each resource's first owed delivery only; the next one
 * comes once the one before succeeded or failed for good, not while it is retried; other
 * resources and a webhook without ordering are not held back. */
static void c_ordering(struct ctx *c)
{
    struct hl_app a;
    struct hook h, plain;
    struct ev x1, x2, x3, y1, v;
    struct jobs j = {0};
    forget_hooks(c);
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    struct hl_webhook_patch p = {.set = HL_WP_ORDERING, .ordering = HL_ORDER_RESOURCE};
    struct hl_webhook w;
    assert_int_equal(hl_store_webhook_update(c->st, a.id, h.uid, &p, hl_now_ms(), &w), HL_OK);
    assert_int_equal(w.ordering, HL_ORDER_RESOURCE);
    hl_webhook_clear(&w);
    assert_int_equal(publish_about(c, a.id, "agent-x", &x1), 1);
    assert_int_equal(publish_about(c, a.id, "agent-x", &x2), 1);
    assert_int_equal(publish_about(c, a.id, "agent-y", &y1), 1);
    assert_int_equal(publish_about(c, a.id, "agent-x", &x3), 1);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &plain);
    for (int i = 0; i < 3; i++)
        assert_int_equal(publish_about(c, a.id, "agent-z", &v), 2);
    int64_t now = hl_now_ms();

    /* x1, y1 and z's first of the ordered webhook, every one of the plain webhook's */
    claim_mine(c, now, now + SEC, NULL, 0, &j);
    assert_int_equal(j.n, 3 + 3);
    const struct hl_job *first = NULL;
    size_t ordered = 0;
    for (size_t i = 0; i < j.n; i++) {
        if (j.v[i].webhook_id != h.id)
            continue;
        ordered++;
        if (!first || j.v[i].delivery_id < first->delivery_id)
            first = &j.v[i];
    }
    assert_int_equal(ordered, 3);
    struct hl_job x1job = *first; /* the lowest id: x1 */
    /* x1 is retried: x2 and x3 wait, even once its lease has lapsed */
    record_as(c, &x1job, now, HL_OUT_RETRY);
    claim_mine(c, now + 2 * SEC, now + 3 * SEC, NULL, 0, &j);
    for (size_t i = 0; i < j.n; i++)
        assert_true(strcmp(j.v[i].event_uid, x2.e.uid) != 0 &&
                    strcmp(j.v[i].event_uid, x3.e.uid) != 0);
    /* x1 fails for good: x2 goes, x3 still waits */
    record_as(c, &x1job, now + 2 * MIN, HL_OUT_FAILED);
    claim_mine(c, now + 2 * MIN, now + 3 * MIN, NULL, 0, &j);
    size_t got = 0;
    struct hl_job x2job = {0};
    for (size_t i = 0; i < j.n; i++) {
        if (j.v[i].webhook_id == h.id && j.v[i].event_id > 0 &&
            strcmp(j.v[i].event_uid, x2.e.uid) == 0) {
            x2job = j.v[i];
            got++;
        }
        assert_true(strcmp(j.v[i].event_uid, x3.e.uid) != 0);
    }
    assert_int_equal(got, 1);
    /* x2 succeeds: x3 goes */
    record_as(c, &x2job, now + 2 * MIN, HL_OUT_SUCCESS);
    claim_mine(c, now + 4 * MIN, now + 5 * MIN, NULL, 0, &j);
    got = 0;
    for (size_t i = 0; i < j.n; i++)
        got += strcmp(j.v[i].event_uid, x3.e.uid) == 0;
    assert_int_equal(got, 1);
    jobs_free(&j);
}

/* The deliveries of a webhook with a filter (issue 19, made one by one after the fan-out) are
 * ordered like the others (ordering = resource) and carry their event's type, so that a list by
 * event type finds them (issue 20). */
static void c_filtered_ordered(struct ctx *c)
{
    struct hl_app a;
    struct hook h;
    struct ev x1, x2;
    struct jobs j = {0};
    forget_hooks(c);
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    struct hl_webhook_patch p = {.set = HL_WP_ORDERING | HL_WP_FILTER,
                                 .ordering = HL_ORDER_RESOURCE,
                                 .filter = "{\"event\":[\"agent.updated\"]}"};
    assert_int_equal(hl_store_webhook_update(c->st, a.id, h.uid, &p, hl_now_ms(), NULL), HL_OK);
    assert_int_equal(publish_about(c, a.id, "agent-x", &x1), 1);
    assert_int_equal(publish_about(c, a.id, "agent-x", &x2), 1);
    struct hl_delivery_filter f = {.status = -1, .type = HL_EV_AGENT_UPDATED};
    struct hl_delivery *dl = NULL;
    size_t n = 0;
    assert_int_equal(hl_store_delivery_list(c->st, a.id, h.id, &f, 0, 100, &dl, &n), HL_OK);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        hl_delivery_clear(&dl[i]);
    free(dl);
    /* one resource: one delivery at a time */
    int64_t now = hl_now_ms();
    claim_mine(c, now, now + SEC, NULL, 0, &j);
    assert_int_equal(j.n, 1);
    assert_string_equal(j.v[0].event_uid, x1.e.uid);
    jobs_free(&j);
}

/* A resend under an open breaker while its probe is leased makes no second probe: nothing more
 * is claimed during the lease; the resent delivery is the next probe, once the first is recorded
 * and the next probe's time has come. */
static void c_breaker_resend_leased(struct ctx *c)
{
    struct hl_app a;
    struct hook h;
    struct ev v;
    struct jobs j = {0}, probe = {0};
    forget_hooks(c);
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    for (int i = 0; i < 4; i++)
        assert_int_equal(publish(c, a.id, HL_EV_AGENT_UPDATED, &v), 1);
    int64_t now = hl_now_ms();
    claim_mine(c, now, now + SEC, NULL, 0, &j);
    assert_int_equal(j.n, 4);
    for (int i = 0; i < 3; i++)
        record_breaker(c, &j.v[i], now, 0, now + 10 * SEC);
    assert_true(breaker_of(c, a.id, &h) != 0);
    record_breaker(c, &j.v[3], now, 0, now + 10 * SEC); /* in flight when it opened */

    claim_mine(c, now + 2 * MIN, now + 3 * MIN, NULL, 0, &probe);
    assert_int_equal(probe.n, 1);
    int64_t other =
        probe.v[0].delivery_id == j.v[3].delivery_id ? j.v[2].delivery_id : j.v[3].delivery_id;
    assert_int_equal(hl_store_delivery_resend(c->st, a.id, other, now + 2 * MIN + 1), HL_OK);
    claim_mine(c, now + 2 * MIN + 2, now + 2 * MIN + SEC, NULL, 0, &j);
    assert_int_equal(j.n, 0); /* one probe at a time */
    record_breaker(c, &probe.v[0], now + 2 * MIN + 3, 0, now + 4 * MIN);
    claim_mine(c, now + 4 * MIN, now + 5 * MIN, NULL, 0, &j);
    assert_int_equal(j.n, 1);
    assert_int_equal(j.v[0].delivery_id, other); /* the resent one, first in line */
    jobs_free(&j);
    jobs_free(&probe);
}

/* An open breaker on an ordered webhook probes with a delivery whose resource is free, even
 * when the earliest due one waits behind its resource's retried delivery. */
static void c_breaker_ordering(struct ctx *c)
{
    struct hl_app a;
    struct hook h;
    struct ev x1, x2, y1, z1;
    struct jobs j = {0};
    forget_hooks(c);
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    struct hl_webhook_patch p = {.set = HL_WP_ORDERING, .ordering = HL_ORDER_RESOURCE};
    assert_int_equal(hl_store_webhook_update(c->st, a.id, h.uid, &p, hl_now_ms(), NULL), HL_OK);
    assert_int_equal(publish_about(c, a.id, "agent-x", &x1), 1);
    assert_int_equal(publish_about(c, a.id, "agent-x", &x2), 1); /* due first, waits on x1 */
    assert_int_equal(publish_about(c, a.id, "agent-y", &y1), 1);
    assert_int_equal(publish_about(c, a.id, "agent-z", &z1), 1);
    int64_t now = hl_now_ms();
    claim_mine(c, now, now + SEC, NULL, 0, &j);
    assert_int_equal(j.n, 3);
    struct hl_job three[3] = {j.v[0], j.v[1], j.v[2]};
    for (int i = 0; i < 3; i++)
        record_breaker(c, &three[i], now, 0, now + 10 * SEC);
    assert_true(breaker_of(c, a.id, &h) != 0);
    claim_mine(c, now + 2 * MIN, now + 3 * MIN, NULL, 0, &j);
    assert_int_equal(j.n, 1);
    assert_true(strcmp(j.v[0].event_uid, x2.e.uid) != 0);
    /* x2 resent: not its resource's head, so not the probe; the next probe, now, is free */
    record_breaker(c, &j.v[0], now + 2 * MIN, 0, now + 10 * MIN);
    struct hl_delivery_filter f = {.status = -1, .type = -1};
    struct hl_delivery *dl = NULL;
    size_t n = 0;
    assert_int_equal(hl_store_delivery_list(c->st, a.id, h.id, &f, 0, 10, &dl, &n), HL_OK);
    int64_t x2_id = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(dl[i].event_uid, x2.e.uid) == 0)
            x2_id = dl[i].id;
    for (size_t i = 0; i < n; i++)
        hl_delivery_clear(&dl[i]);
    free(dl);
    assert_int_equal(hl_store_delivery_resend(c->st, a.id, x2_id, now + 3 * MIN), HL_OK);
    claim_mine(c, now + 3 * MIN, now + 4 * MIN, NULL, 0, &j);
    assert_int_equal(j.n, 1);
    assert_true(strcmp(j.v[0].event_uid, x2.e.uid) != 0);
    jobs_free(&j);
}

static void c_next_due(struct ctx *c)
{
    struct hl_app a;
    struct hook h;
    struct ev v;
    struct jobs j = {0};
    int64_t at = -1;
    int priv = !c->be->shared;
    make_app(c, &a);
    if (priv) {
        assert_int_equal(hl_store_next_due(c->st, hl_now_ms(), &at), HL_OK);
        assert_int_equal(at, 0);
    }
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    int64_t t0 = hl_now_ms();
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &v), 1);
    int64_t now = hl_now_ms();
    assert_int_equal(hl_store_next_due(c->st, now, &at), HL_OK);
    assert_true(at > 0 && at <= now);
    if (priv)
        assert_true(at >= t0);

    /* leased: not due while the lease runs, due again when it ends */
    claim_mine(c, now, now + 30 * SEC, NULL, 0, &j);
    assert_int_equal(j.n, 1);
    if (priv) {
        assert_int_equal(hl_store_next_due(c->st, now, &at), HL_OK);
        assert_int_equal(at, 0);
        assert_int_equal(hl_store_next_due(c->st, now + 30 * SEC, &at), HL_OK);
        assert_true(at >= t0 && at <= now);
    }

    /* a retry is due at its next_attempt_at */
    struct hl_attempt att = {
        .delivery_id = j.v[0].delivery_id,
        .webhook_id = h.id,
        .started_at = now,
        .status_code = 500,
        .error = "HTTP 500",
        .outcome = HL_OUT_RETRY,
        .next_attempt_at = now + 10 * MIN,
    };
    assert_int_equal(hl_store_record(c->st, &att, 1), HL_OK);
    assert_int_equal(hl_store_next_due(c->st, now, &at), HL_OK);
    if (priv)
        assert_int_equal(at, now + 10 * MIN);
    else
        assert_true(at > 0 && at <= now + 10 * MIN);

    /* paused deliveries are not due; finished ones neither */
    if (priv) {
        set_active(c, a.id, &h, 0, now);
        assert_int_equal(hl_store_next_due(c->st, now, &at), HL_OK);
        assert_int_equal(at, 0);
        set_active(c, a.id, &h, 1, now + MIN);
        assert_int_equal(hl_store_next_due(c->st, now, &at), HL_OK);
        assert_int_equal(at, now + MIN);
        claim_mine(c, now + MIN, now + 2 * MIN, NULL, 0, &j);
        assert_int_equal(j.n, 1);
        att.outcome = HL_OUT_SUCCESS;
        att.status_code = 200;
        att.error = NULL;
        assert_int_equal(hl_store_record(c->st, &att, 1), HL_OK);
        assert_int_equal(hl_store_next_due(c->st, now + DAY, &at), HL_OK);
        assert_int_equal(at, 0);
    }
    jobs_free(&j);
}

static void c_release_leases(struct ctx *c)
{
    struct hl_app a;
    struct hook h;
    struct ev v;
    struct jobs j = {0};
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &v), 1);
    int64_t now = hl_now_ms();
    claim_mine(c, now, now + DAY, NULL, 0, &j);
    assert_int_equal(j.n, 1);
    int64_t d = j.v[0].delivery_id;
    claim_mine(c, now + HOUR, now + 2 * HOUR, NULL, 0, &j);
    assert_int_equal(j.n, 0);
    assert_int_equal(hl_store_release_leases(c->st), HL_OK);
    /* On a shared database the leases are other nodes' live work, and postgres.c keeps them on
     * purpose (its header note): only a single node's store drops them. */
    if (c->be->shared) {
        jobs_free(&j);
        return;
    }
    claim_mine(c, now + 1, now + HOUR, NULL, 0, &j);
    assert_int_equal(j.n, 1);
    assert_int_equal(j.v[0].delivery_id, d);
    assert_int_equal(j.v[0].attempts, 0);
    jobs_free(&j);
}

/* ---- context-file ingestion ---- */

/* Queues a context file of app_id created at at (its bytes are not looked at here). */
static void queue_file(struct ctx *c, int64_t app_id, int64_t at, struct res *x)
{
    struct ev v;
    struct hl_file_rec rec = {"files/none", 1, "00"};
    res_init(x, app_id, HL_ENT_CONTEXTFILE, NULL, "ctx-none", "t", "{\"f\":1}", at);
    ev_init(&v, app_id, HL_EV_CONTEXTFILE_CREATED, "t", x->r.uid, at);
    struct hl_change ch = {.op = HL_OP_CREATE, .res = &x->r, .ev = &v.e, .file = &rec};
    assert_int_equal(hl_store_commit(c->st, &ch, 1, NULL, NULL), HL_OK);
}

/* Claims at now, leasing until until, and returns the uid of the file of app a or b it got (""
 * for none) with its attempt number; other apps' files (rows other runs left on a shared
 * database) are claimed and dropped. */
static int64_t claim_file(struct ctx *c, int64_t a, int64_t b, int64_t now, int64_t until,
                          char uid[HL_ID_MAX])
{
    for (int round = 0; round < 1000; round++) {
        struct hl_ingest_job j;
        int rc = hl_store_ingest_claim(c->st, now, until, &j);
        if (rc == HL_ENOTFOUND) {
            uid[0] = '\0';
            return 0;
        }
        assert_int_equal(rc, HL_OK);
        int64_t attempts = j.attempts;
        int mine = j.app_id == a || j.app_id == b;
        if (mine) {
            assert_string_equal(j.res.uid, j.file_uid);
            memcpy(uid, j.file_uid, HL_ID_MAX);
        }
        hl_ingest_job_clear(&j);
        if (mine)
            return attempts;
    }
    fail_msg("ingest claims keep returning files: are leases kept?");
    return 0;
}

/* Apps share the ingestion queue: each claim takes the oldest waiting file of the app with the
 * fewest files being processed. Every claim counts an attempt; a lease is renewed or given back
 * only by the claim that holds it, and a lapsed one is claimed again as the next attempt. */
static void c_ingest_claim(struct ctx *c)
{
    struct hl_app a, b;
    make_app(c, &a);
    make_app(c, &b);
    int64_t t0 = hl_now_ms() - HOUR, now = hl_now_ms(), until = now + HOUR;
    struct res fa[3], fb[2];
    for (int i = 0; i < 3; i++)
        queue_file(c, a.id, t0 + i, &fa[i]);
    for (int i = 0; i < 2; i++)
        queue_file(c, b.id, t0 + 3 + i, &fb[i]);
    /* a has the three oldest files, yet b's come in turn */
    const char *want[] = {fa[0].r.uid, fb[0].r.uid, fa[1].r.uid, fb[1].r.uid, fa[2].r.uid};
    char uid[HL_ID_MAX];
    for (size_t i = 0; i < 5; i++) {
        print_message("claim %zu\n", i);
        assert_int_equal(claim_file(c, a.id, b.id, now, until, uid), 1);
        assert_string_equal(uid, want[i]);
    }
    assert_int_equal(claim_file(c, a.id, b.id, now, until, uid), 0);

    /* only the claim that holds the lease renews it or gives it back */
    int64_t later = until + 3 * HOUR;
    assert_int_equal(hl_store_ingest_renew(c->st, fa[2].r.uid, 1, later + HOUR), HL_OK);
    assert_int_equal(hl_store_ingest_renew(c->st, fa[0].r.uid, 2, until), HL_ENOTFOUND);
    assert_int_equal(hl_store_ingest_release(c->st, fa[0].r.uid, 2, 0), HL_ENOTFOUND);
    /* given back: claimed again at once, as the second attempt */
    assert_int_equal(hl_store_ingest_release(c->st, fa[0].r.uid, 1, 0), HL_OK);
    assert_int_equal(claim_file(c, a.id, b.id, now, until, uid), 2);
    assert_string_equal(uid, fa[0].r.uid);
    /* given back with the attempt refunded (stopped, not failed): the second attempt again */
    assert_int_equal(hl_store_ingest_release(c->st, fa[0].r.uid, 2, 1), HL_OK);
    assert_int_equal(claim_file(c, a.id, b.id, now, until, uid), 2);
    assert_string_equal(uid, fa[0].r.uid);

    /* a finished file is never claimed again, nor renewed */
    struct ev v;
    ev_init(&v, b.id, HL_EV_CONTEXTFILE_UPDATED, "t", fb[0].r.uid, now);
    struct hl_change done = {
        .op = HL_OP_UPDATE, .res = &fb[0].r, .expect_version = 1, .ev = &v.e, .done_file = 1};
    assert_int_equal(hl_store_commit(c->st, &done, 1, NULL, NULL), HL_OK);
    assert_int_equal(hl_store_ingest_renew(c->st, fb[0].r.uid, 1, until), HL_ENOTFOUND);

    /* the leases lapse (a node died): the files are claimed again, each as its next attempt,
     * the queue still shared: fa[2]'s renewed lease holds it a while longer, so b goes first */
    const char *again[] = {fb[1].r.uid, fa[0].r.uid, fa[1].r.uid};
    const int64_t attempt[] = {2, 3, 2};
    for (size_t i = 0; i < 3; i++) {
        print_message("claim again %zu\n", i);
        assert_int_equal(claim_file(c, a.id, b.id, later, later + DAY, uid), attempt[i]);
        assert_string_equal(uid, again[i]);
    }
    assert_int_equal(claim_file(c, a.id, b.id, later, later + DAY, uid), 0);
    assert_int_equal(claim_file(c, a.id, b.id, later + 2 * HOUR, later + 3 * HOUR, uid), 2);
    assert_string_equal(uid, fa[2].r.uid);
}

/* ---- the store as a whole ---- */

/* Several threads committing at once (the SQLite backend groups them into one transaction, each
 * under its own savepoint): every request gets its own answer, a failing request undoes all of
 * its own writes and none of the others'. */
#define WORKERS 4
#define ROUNDS 20

struct worker {
    struct hl_store *st;
    struct res good[ROUNDS], stale[ROUNDS];
    struct ev good_ev[ROUNDS], stale_ev_a[ROUNDS], stale_ev_b[ROUNDS];
    int ok, conflict, other; /* answers seen */
    int64_t made;
};

static void *commit_worker(void *arg)
{
    struct worker *w = arg;
    int64_t version = 1;
    for (int i = 0; i < ROUNDS; i++) {
        struct hl_change good = {.op = HL_OP_UPDATE,
                                 .res = &w->good[i].r,
                                 .expect_version = version,
                                 .ev = &w->good_ev[i].e};
        int rc = hl_store_commit(w->st, &good, 1, NULL, &w->made);
        if (rc == HL_OK) {
            w->ok++;
            version++;
        } else {
            w->other++;
        }
        /* an event that commits first, then a stale update: the event must go too */
        struct hl_change bad[2] = {
            {.op = HL_OP_NONE, .ev = &w->stale_ev_a[i].e},
            {.op = HL_OP_UPDATE,
             .res = &w->stale[i].r,
             .expect_version = version - 1,
             .ev = &w->stale_ev_b[i].e},
        };
        rc = hl_store_commit(w->st, bad, 2, NULL, &w->made);
        if (rc == HL_ECONFLICT)
            w->conflict++;
        else
            w->other++;
    }
    return NULL;
}

static void c_concurrent_commits(struct ctx *c)
{
    struct hl_app a;
    struct hook h;
    struct ev v;
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_AGENT, EV(HL_EV_AGENT_UPDATED), 1, &h);
    struct worker *w = calloc(WORKERS, sizeof(*w));
    assert_non_null(w);
    for (int k = 0; k < WORKERS; k++) {
        struct res first;
        int64_t made = 0;
        res_init(&first, a.id, HL_ENT_AGENT, NULL, NULL, "t", "{\"round\":-1}", hl_now_ms());
        assert_int_equal(change(c, HL_OP_CREATE, &first, 0, &v, &made), HL_OK);
        w[k].st = c->st;
        for (int i = 0; i < ROUNDS; i++) {
            char body[64];
            snprintf(body, sizeof(body), "{\"worker\":%d,\"round\":%d}", k, i);
            res_init(&w[k].good[i], a.id, HL_ENT_AGENT, first.r.uid, NULL, "t", body, hl_now_ms());
            res_init(&w[k].stale[i], a.id, HL_ENT_AGENT, first.r.uid, NULL, "t", "{\"stale\":1}",
                     hl_now_ms());
            ev_init(&w[k].good_ev[i], a.id, HL_EV_AGENT_UPDATED, "t", first.r.uid, hl_now_ms());
            ev_init(&w[k].stale_ev_a[i], a.id, HL_EV_AGENT_UPDATED, "t", first.r.uid, hl_now_ms());
            ev_init(&w[k].stale_ev_b[i], a.id, HL_EV_AGENT_UPDATED, "t", first.r.uid, hl_now_ms());
        }
    }
    pthread_t th[WORKERS];
    for (int k = 0; k < WORKERS; k++)
        assert_int_equal(pthread_create(&th[k], NULL, commit_worker, &w[k]), 0);
    for (int k = 0; k < WORKERS; k++)
        assert_int_equal(pthread_join(th[k], NULL), 0);

    /* every event of the app, once */
    struct hl_event_filter all = {.type = -1};
    struct hl_event *evs = NULL;
    size_t n = 0;
    assert_int_equal(hl_store_event_list(c->st, a.id, &all, 0, 1000, &evs, &n), HL_OK);
    int64_t made = 0;
    for (int k = 0; k < WORKERS; k++) {
        print_message("worker %d: %d ok, %d conflicts, %d other\n", k, w[k].ok, w[k].conflict,
                      w[k].other);
        assert_int_equal(w[k].ok, ROUNDS);
        assert_int_equal(w[k].conflict, ROUNDS);
        assert_int_equal(w[k].other, 0);
        made += w[k].made;
        struct hl_resource r;
        assert_int_equal(hl_store_resource_get(c->st, a.id, HL_ENT_AGENT, w[k].good[0].r.uid, &r),
                         HL_OK);
        assert_int_equal(r.version, ROUNDS + 1);
        assert_string_equal(r.body, w[k].good[ROUNDS - 1].body);
        hl_resource_clear(&r);
        for (int i = 0; i < ROUNDS; i++) {
            int good = 0, stale = 0;
            for (size_t m = 0; m < n; m++) {
                good += strcmp(evs[m].uid, w[k].good_ev[i].e.uid) == 0;
                stale += strcmp(evs[m].uid, w[k].stale_ev_a[i].e.uid) == 0 ||
                         strcmp(evs[m].uid, w[k].stale_ev_b[i].e.uid) == 0;
            }
            assert_int_equal(good, 1);
            assert_int_equal(stale, 0);
        }
    }
    /* the creates' events and the good updates' */
    assert_int_equal(n, WORKERS + WORKERS * ROUNDS);
    for (size_t m = 0; m < n; m++)
        hl_event_clear(&evs[m]);
    free(evs);
    /* one delivery per good update (the webhook takes agent.updated only) */
    assert_int_equal(made, WORKERS * ROUNDS);
    struct jobs j = {0};
    int64_t now = hl_now_ms();
    claim_mine(c, now, now + HOUR, NULL, 0, &j);
    assert_int_equal(j.n, WORKERS * ROUNDS);
    jobs_free(&j);
    free(w);
}

/* Opens the store at c->url again, into c->st. */
static void open_again(struct ctx *c)
{
    char err[256] = "";
    if (hl_store_open(c->url, &c->st, err, sizeof(err)))
        fail_msg("reopen %s: %s", c->url, err);
}

/* Closes and opens the store again (on SQLite the file is then checkpointed, its size what it
 * holds). */
static void reopen(struct ctx *c)
{
    hl_store_close(c->st);
    c->st = NULL;
    open_again(c);
}

static void c_persistence(struct ctx *c)
{
    struct hl_app a, got;
    struct hook h;
    struct ev v;
    struct res r;
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, AC, 1, &h);
    char key[HL_ID_MAX], key_uid[HL_ID_MAX];
    uint8_t hash[32];
    new_uid("hk_", key);
    new_uid("key_", key_uid);
    sha256(key, hash);
    assert_int_equal(hl_store_key_create(c->st, a.id, key_uid, hash, "hk_x"), HL_OK);
    res_init(&r, a.id, HL_ENT_AGENT, NULL, NULL, "tenant-p", "{\"persisted\":true}", hl_now_ms());
    ev_init(&v, a.id, HL_EV_AGENT_CREATED, "tenant-p", r.r.uid, hl_now_ms());
    char idem_key[HL_ID_MAX];
    new_uid("idem-", idem_key);
    struct hl_idem idem = {.key = idem_key, .status = 201, .response = "{}"};
    struct hl_change ch = {.op = HL_OP_CREATE, .res = &r.r, .ev = &v.e};
    int64_t made = 0, t0 = hl_now_ms();
    assert_int_equal(hl_store_commit(c->st, &ch, 1, &idem, &made), HL_OK);
    assert_int_equal(made, 1);

    reopen(c);

    assert_int_equal(hl_store_app_get(c->st, a.uid, &got), HL_OK);
    assert_int_equal(got.id, a.id);
    assert_int_equal(hl_store_key_lookup(c->st, hash, &got), HL_OK);
    assert_int_equal(got.id, a.id);
    struct hl_webhook w;
    get_hook(c, a.id, &h, &w);
    assert_string_equal(w.secret, h.secret);
    assert_int_equal(w.event_types, AC);
    hl_webhook_clear(&w);
    struct hl_resource res;
    assert_int_equal(hl_store_resource_get(c->st, a.id, HL_ENT_AGENT, r.r.uid, &res), HL_OK);
    assert_string_equal(res.body, "{\"persisted\":true}");
    hl_resource_clear(&res);
    assert_true(event_logged(c, a.id, v.e.uid));
    struct hl_idem_hit hit;
    assert_int_equal(hl_store_idem_get(c->st, a.id, idem_key, t0 - HOUR, &hit), HL_OK);
    assert_int_equal(hit.status, 201);
    free(hit.response);
    struct jobs j = {0};
    int64_t now = hl_now_ms();
    claim_mine(c, now, now + HOUR, NULL, 0, &j);
    assert_int_equal(j.n, 1);
    assert_string_equal(j.v[0].event_uid, v.e.uid);
    assert_memory_equal(j.v[0].payload, v.e.payload, v.e.payload_len);
    jobs_free(&j);
}

struct waiter {
    struct hl_store *st;
    uint64_t seen;
    int woke;
    int64_t waited_ms;
};

static void *wait_thread(void *arg)
{
    struct waiter *w = arg;
    int64_t t0 = hl_mono_ms();
    w->woke = hl_store_wait_since(w->st, w->seen, t0 + 10 * SEC);
    w->waited_ms = hl_mono_ms() - t0;
    return NULL;
}

static void c_wake(struct ctx *c)
{
    struct hl_app a;
    struct hook h;
    struct ev v;
    make_app(c, &a);
    uint64_t s0 = hl_store_wake_seq(c->st);
    /* a commit that made no delivery need not wake anyone */
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &v), 0);
    if (!c->be->shared)
        assert_int_equal(hl_store_wake_seq(c->st), s0);

    /* one that made deliveries does */
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    uint64_t s1 = hl_store_wake_seq(c->st);
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &v), 1);
    uint64_t s2 = hl_store_wake_seq(c->st);
    assert_true(s2 > s1);
    /* a waiter that sampled before returns at once */
    int64_t t = hl_mono_ms();
    assert_int_equal(hl_store_wait_since(c->st, s1, t + 5 * SEC), 1);
    assert_true(hl_mono_ms() - t < 1000);
    /* nothing happening: the wait times out */
    if (!c->be->shared) {
        t = hl_mono_ms();
        assert_int_equal(hl_store_wait_since(c->st, s2, t + 100), 0);
        assert_true(hl_mono_ms() - t >= 90);
    }

    /* a dispatcher asleep in another thread is woken by the commit */
    struct waiter w = {.st = c->st, .seen = hl_store_wake_seq(c->st)};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, wait_thread, &w), 0);
    usleep(50 * 1000);
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_UPDATED, &v), 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.woke, 1);
    assert_true(w.waited_ms < 5000);
}

/* ---- SQLite under injected faults ----
 *
 * Every SQLite file of this program is opened through a VFS that wraps the default one and does
 * what the real one does, unless a case arms a fault: a write to the WAL that fails (a full
 * disk), a sync that fails (an I/O error) or blocks until released (to hold a group commit in
 * flight), or a PRAGMA synchronous = FULL that is refused. It also counts, when asked, the bytes
 * written to WAL files and the syncs of database files (which, in WAL mode, only checkpoints
 * do), and which of those syncs came from one watched thread. */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stall_sync; /* the next xSync blocks until this is cleared */
    int stalled;    /* an xSync is blocked */
    int write_err;  /* xWrite on a WAL file fails with this code (0: no fault) */
    int sync_err;   /* xSync fails with this code */
    int pragma_err; /* PRAGMA synchronous = FULL fails */
    int hits;       /* faults injected */
    int watching;   /* count what follows */
    pthread_t watched;
    int64_t wal_bytes;
    int db_syncs, db_syncs_watched;
} F = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

struct ffile {
    sqlite3_file base;
    sqlite3_file *real; /* the wrapped file, right after this struct */
    int wal;
    int main_db;
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs faulty_vfs;
static sqlite3_io_methods ffile_io;

static sqlite3_file *REAL(sqlite3_file *f)
{
    return ((struct ffile *)f)->real;
}

/* Sets a fault (0 clears it); a fault set anew counts its hits from 0. */
static void fault_arm(int *what, int value)
{
    pthread_mutex_lock(&F.mu);
    *what = value;
    if (value && what != &F.stall_sync)
        F.hits = 0;
    pthread_cond_broadcast(&F.cv);
    pthread_mutex_unlock(&F.mu);
}

/* The code a fault returns, or 0; counts it. */
static int fault_take(const int *what)
{
    pthread_mutex_lock(&F.mu);
    int rc = *what;
    if (rc)
        F.hits++;
    pthread_mutex_unlock(&F.mu);
    return rc;
}

static int f_close(sqlite3_file *f)
{
    return REAL(f)->pMethods->xClose(REAL(f));
}

static int f_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
    return REAL(f)->pMethods->xRead(REAL(f), p, n, off);
}

static int f_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
    int wal = ((struct ffile *)f)->wal;
    int rc = wal ? fault_take(&F.write_err) : 0;
    if (wal && !rc) {
        pthread_mutex_lock(&F.mu);
        F.wal_bytes += F.watching ? n : 0;
        pthread_mutex_unlock(&F.mu);
    }
    return rc ? rc : REAL(f)->pMethods->xWrite(REAL(f), p, n, off);
}

static int f_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int f_sync(sqlite3_file *f, int flags)
{
    int rc = fault_take(&F.sync_err); /* a sync held below was asked for before any fault */
    pthread_mutex_lock(&F.mu);
    if (F.watching && ((struct ffile *)f)->main_db) {
        F.db_syncs++;
        F.db_syncs_watched += pthread_equal(pthread_self(), F.watched) != 0;
    }
    if (F.stall_sync) {
        F.stalled = 1;
        pthread_cond_broadcast(&F.cv);
        while (F.stall_sync)
            pthread_cond_wait(&F.cv, &F.mu);
        F.stalled = 0;
    }
    pthread_mutex_unlock(&F.mu);
    return rc ? rc : REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int f_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int f_lock(sqlite3_file *f, int level)
{
    return REAL(f)->pMethods->xLock(REAL(f), level);
}

static int f_unlock(sqlite3_file *f, int level)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), level);
}

static int f_check_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int f_file_control(sqlite3_file *f, int op, void *arg)
{
    if (op == SQLITE_FCNTL_PRAGMA) {
        char **a = arg;
        if (a[1] && a[2] && strcasecmp(a[1], "synchronous") == 0 && strcasecmp(a[2], "FULL") == 0 &&
            fault_take(&F.pragma_err)) {
            a[0] = sqlite3_mprintf("injected: synchronous stays as it is");
            return SQLITE_ERROR;
        }
    }
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int f_sector_size(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int f_device(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int f_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **p)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, p);
}

static int f_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}

static void f_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int f_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int f_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **p)
{
    return REAL(f)->pMethods->xFetch(REAL(f), off, n, p);
}

static int f_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static int f_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
    (void)vfs;
    struct ffile *f = (struct ffile *)file;
    f->real = (sqlite3_file *)(f + 1);
    f->wal = (flags & SQLITE_OPEN_WAL) != 0;
    f->main_db = (flags & SQLITE_OPEN_MAIN_DB) != 0;
    int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
    /* Our methods only where the real file has its own (it has none when the open failed). */
    file->pMethods = f->real->pMethods ? &ffile_io : NULL;
    return rc;
}

/* Makes the faulty VFS the default, once, before any store opens a SQLite file. */
static void faulty_vfs_register(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    assert_non_null(real_vfs);
    /* The real VFS's other functions do not depend on which struct they are called with. */
    faulty_vfs = *real_vfs;
    faulty_vfs.zName = "hookline-test-faulty";
    faulty_vfs.szOsFile = (int)sizeof(struct ffile) + real_vfs->szOsFile;
    faulty_vfs.xOpen = f_open;
    ffile_io = (sqlite3_io_methods){
        3,           f_close,   f_read,     f_write,          f_truncate,     f_sync,
        f_file_size, f_lock,    f_unlock,   f_check_reserved, f_file_control, f_sector_size,
        f_device,    f_shm_map, f_shm_lock, f_shm_barrier,    f_shm_unmap,    f_fetch,
        f_unfetch,
    };
    assert_int_equal(sqlite3_vfs_register(&faulty_vfs, 1), SQLITE_OK);
}

/* Whether thread tid of this process is asleep (here: waiting its turn in the group commit). */
static int asleep(pid_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *state = strrchr(buf, ')');
    return state && state[1] == ' ' && state[2] == 'S';
}

/* One commit of an agent's creation, in a thread of its own. */
struct committer {
    struct hl_store *st;
    struct res r;
    struct ev v;
    pid_t tid;
    int rc;
};

static void *commit_one(void *arg)
{
    struct committer *k = arg;
    __atomic_store_n(&k->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
    struct hl_change ch = {.op = HL_OP_CREATE, .res = &k->r.r, .ev = &k->v.e};
    k->rc = hl_store_commit(k->st, &ch, 1, NULL, NULL);
    return NULL;
}

static void committer_init(struct ctx *c, int64_t app_id, struct committer *k)
{
    memset(k, 0, sizeof(*k));
    k->st = c->st;
    k->rc = -999;
    res_init(&k->r, app_id, HL_ENT_AGENT, NULL, NULL, "tenant-f", "{\"batch\":1}", hl_now_ms());
    ev_init(&k->v, app_id, HL_EV_AGENT_CREATED, "tenant-f", k->r.r.uid, hl_now_ms());
}

/* Whether a committer's change is in the store: all of it (1), none of it (0); fails on half.
 */
static int stored(struct ctx *c, const struct committer *k)
{
    struct hl_resource r;
    int rc = hl_store_resource_get(c->st, k->r.r.app_id, HL_ENT_AGENT, k->r.r.uid, &r);
    assert_true(rc == HL_OK || rc == HL_ENOTFOUND);
    if (rc == HL_OK)
        hl_resource_clear(&r);
    int ev = event_logged(c, k->r.r.app_id, k->v.e.uid);
    assert_int_equal(ev, rc == HL_OK);
    return ev;
}

#define FOLLOWERS 4

/* One group commit that fails as a whole: a leader's commit is held in its fsync while
 * FOLLOWERS more requests queue behind it, so that the next batch holds all of them; that batch
 * then fails to commit (fault_code on the WAL's writes or syncs). Every request of it gets an
 * error, none of it is stored, not even after reopening, and the store works on afterwards. */
static void batch_fails(struct ctx *c, int *fault, int fault_code)
{
    struct hl_app a;
    struct hook h;
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_AGENT, 0, 1, &h);
    struct committer *k = calloc(FOLLOWERS + 2, sizeof(*k));
    assert_non_null(k);
    for (int i = 0; i < FOLLOWERS + 2; i++)
        committer_init(c, a.id, &k[i]);
    pthread_t th[FOLLOWERS + 1];

    /* the leader, held in the fsync of its commit */
    fault_arm(&F.stall_sync, 1);
    assert_int_equal(pthread_create(&th[0], NULL, commit_one, &k[0]), 0);
    pthread_mutex_lock(&F.mu);
    while (!F.stalled)
        pthread_cond_wait(&F.cv, &F.mu);
    pthread_mutex_unlock(&F.mu);
    /* the followers queue behind it: wait until each sleeps in the queue */
    for (int i = 1; i <= FOLLOWERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, commit_one, &k[i]), 0);
    for (int i = 1; i <= FOLLOWERS; i++) {
        int64_t deadline = hl_mono_ms() + 30 * SEC;
        while (!__atomic_load_n(&k[i].tid, __ATOMIC_ACQUIRE) || !asleep(k[i].tid)) {
            if (hl_mono_ms() > deadline)
                fail_msg("follower %d never queued", i);
            usleep(1000);
        }
    }
    /* the next batch (all of the followers) fails; the leader's commit goes through */
    fault_arm(fault, fault_code);
    fault_arm(&F.stall_sync, 0);
    for (int i = 0; i <= FOLLOWERS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_mutex_lock(&F.mu);
    int hits = F.hits;
    *fault = 0;
    pthread_mutex_unlock(&F.mu);
    /* one failed commit: the followers were one batch */
    assert_int_equal(hits, 1);
    assert_int_equal(k[0].rc, HL_OK);
    for (int i = 1; i <= FOLLOWERS; i++)
        assert_int_equal(k[i].rc, HL_ESTORE);

    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(stored(c, &k[0]), 1);
        for (int i = 1; i <= FOLLOWERS; i++)
            assert_int_equal(stored(c, &k[i]), 0);
        if (pass)
            break;
        /* the store works on: a commit after the failure is kept */
        commit_one(&k[FOLLOWERS + 1]);
        assert_int_equal(k[FOLLOWERS + 1].rc, HL_OK);
        reopen(c);
    }
    assert_int_equal(stored(c, &k[FOLLOWERS + 1]), 1);
    /* the deliveries are those of the commits that went through */
    struct jobs j = {0};
    int64_t now = hl_now_ms();
    claim_mine(c, now, now + HOUR, NULL, 0, &j);
    assert_int_equal(j.n, 2);
    for (size_t i = 0; i < j.n; i++)
        assert_true(strcmp(j.v[i].event_uid, k[0].v.e.uid) == 0 ||
                    strcmp(j.v[i].event_uid, k[FOLLOWERS + 1].v.e.uid) == 0);
    jobs_free(&j);
    free(k);
}

static void s_batch_disk_full(struct ctx *c)
{
    batch_fails(c, &F.write_err, SQLITE_FULL);
}

static void s_batch_io_error(struct ctx *c)
{
    batch_fails(c, &F.sync_err, SQLITE_IOERR_FSYNC);
}

/* An app with a webhook and one event (v) delivered to it, then a claim of that delivery at the
 * returned time, made with PRAGMA synchronous = FULL refused from then on (until the case clears
 * F.pragma_err): the claim fails and synchronous stays off (sync_lost). */
static int64_t lose_sync(struct ctx *c, struct hl_app *a, struct ev *v)
{
    struct hook h;
    make_app(c, a);
    make_hook(c, a->id, HL_ENT_ALL, 0, 1, &h);
    assert_int_equal(publish(c, a->id, HL_EV_AGENT_CREATED, v), 1);
    int64_t now = hl_now_ms();
    struct hl_job *jobs = NULL;
    size_t n = 0;
    struct hl_claim cl = {.now = now, .lease_until = now + MIN, .max = 64};
    fault_arm(&F.pragma_err, 1);
    assert_int_equal(hl_store_claim(c->st, &cl, &jobs, &n), HL_ESTORE);
    return now;
}

/* A claim leases with synchronous off; when it cannot be turned back on, the claim fails and
 * the writer refuses every write (nothing commits without fsync) until it can. */
static void s_sync_restore_fails(struct ctx *c)
{
    struct hl_app a;
    struct ev v;
    int64_t now = lose_sync(c, &a, &v);
    struct ev refused;
    ev_init(&refused, a.id, HL_EV_AGENT_UPDATED, "tenant-1", "agent-x", hl_now_ms());
    int64_t made = 0;
    assert_int_equal(publish_ev(c, &refused, 0, &made), HL_ESTORE);
    assert_int_equal(hl_store_record(c->st, NULL, 0), HL_ESTORE);
    assert_false(event_logged(c, a.id, refused.e.uid));
    fault_arm(&F.pragma_err, 0);

    /* synchronous is back on at the next write, which goes through */
    struct ev v2;
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_UPDATED, &v2), 1);
    struct jobs j = {0};
    claim_mine(c, now + 2 * MIN, now + HOUR, NULL, 0, &j);
    assert_int_equal(j.n, 2); /* the first claim's lease lapsed; the second event's is new */
    jobs_free(&j);
}

/* A store closed while synchronous cannot be turned back on leaves its WAL as it is, and the next
 * open replays it: a checkpoint then (the writer's, or SQLite's own at the last close) would copy
 * the WAL into the database and truncate it without an fsync. */
static void s_close_sync_lost(struct ctx *c)
{
    struct hl_app a;
    struct ev v;
    lose_sync(c, &a, &v);
    hl_store_close(c->st); /* synchronous still cannot be turned on */
    c->st = NULL;
    fault_arm(&F.pragma_err, 0);
    char path[1100];
    struct stat sb;
    snprintf(path, sizeof(path), "%s-wal", c->url);
    assert_int_equal(stat(path, &sb), 0);
    assert_true(sb.st_size > 0);
    open_again(c);
    assert_true(event_logged(c, a.id, v.e.uid));
}

/* ---- the console (issue 15) ---- */

/* The signing key is made once and read back the same, whoever offers another. */
static void c_console_key(struct ctx *c)
{
    uint8_t k1[32], k2[32], got1[32], got2[32];
    memset(k1, 0xa1, sizeof(k1));
    memset(k2, 0xb2, sizeof(k2));
    assert_int_equal(hl_store_console_key(c->st, k1, got1), HL_OK);
    assert_int_equal(hl_store_console_key(c->st, k2, got2), HL_OK);
    assert_memory_equal(got1, got2, 32);
    if (!c->be->shared) /* a fresh database: the first offer is the key */
        assert_memory_equal(got1, k1, 32);
    assert_memory_not_equal(got2, k2, 32);
}

/* A portal link is used once; used links are forgotten once they expire. */
static void c_portal_use(struct ctx *c)
{
    char t1[HL_ID_MAX], t2[HL_ID_MAX];
    new_uid("tok_", t1);
    new_uid("tok_", t2);
    int64_t now = hl_now_ms();
    assert_int_equal(hl_store_portal_use(c->st, t1, now + HOUR, now), HL_OK);
    assert_int_equal(hl_store_portal_use(c->st, t1, now + HOUR, now), HL_ECONFLICT);
    assert_int_equal(hl_store_portal_use(c->st, t1, now + HOUR, now + MIN), HL_ECONFLICT);
    assert_int_equal(hl_store_portal_use(c->st, t2, now + SEC, now), HL_OK);
    assert_int_equal(hl_store_portal_use(c->st, t2, now + SEC, now), HL_ECONFLICT);
    /* a node whose clock is ahead by less than the margin forgets neither (a node whose clock
     * is behind could still take them for unexpired: forgotten, they could be used again) */
    char t3[HL_ID_MAX], t4[HL_ID_MAX];
    new_uid("tok_", t3);
    new_uid("tok_", t4);
    int64_t ahead = now + 2 * HOUR;
    assert_int_equal(hl_store_portal_use(c->st, t3, ahead + HOUR, ahead), HL_OK);
    assert_int_equal(hl_store_portal_use(c->st, t2, now + SEC, now), HL_ECONFLICT);
    assert_int_equal(hl_store_portal_use(c->st, t1, now + HOUR, now), HL_ECONFLICT);
    /* past t2's expiry and the margin it is forgotten (a link that old is refused as expired by
     * every node anyway); t1 is still remembered */
    int64_t later = now + 2 * SEC + HL_STORE_EXPIRY_MARGIN_MS;
    assert_int_equal(hl_store_portal_use(c->st, t4, later + HOUR, later), HL_OK);
    assert_int_equal(hl_store_portal_use(c->st, t1, now + HOUR, later), HL_ECONFLICT);
    assert_int_equal(hl_store_portal_use(c->st, t2, now + SEC, now), HL_OK);
}

/* A session signed out stays ended (on every node: they share the database), twice is fine. */
static void c_session_end(struct ctx *c)
{
    char s1[HL_ID_MAX], s2[HL_ID_MAX];
    new_uid("ses_", s1);
    new_uid("ses_", s2);
    int64_t now = hl_now_ms();
    int ended = 1;
    assert_int_equal(hl_store_session_ended(c->st, s1, &ended), HL_OK);
    assert_int_equal(ended, 0);
    assert_int_equal(hl_store_session_end(c->st, s1, now + HOUR, now), HL_OK);
    assert_int_equal(hl_store_session_end(c->st, s1, now + HOUR, now), HL_OK);
    assert_int_equal(hl_store_session_ended(c->st, s1, &ended), HL_OK);
    assert_int_equal(ended, 1);
    assert_int_equal(hl_store_session_ended(c->st, s2, &ended), HL_OK);
    assert_int_equal(ended, 0);
}

/* A key's uid comes with its app, and a key uid finds its app until the key is revoked. */
static void c_key_find(struct ctx *c)
{
    struct hl_app a, got;
    make_app(c, &a);
    char key[HL_ID_MAX], uid[HL_ID_MAX], found[HL_ID_MAX] = "";
    uint8_t h[32];
    new_uid("hk_", key);
    new_uid("key_", uid);
    sha256(key, h);
    assert_int_equal(hl_store_key_create(c->st, a.id, uid, h, "hk_x"), HL_OK);
    assert_int_equal(hl_store_key_find(c->st, h, &got, found), HL_OK);
    assert_int_equal(got.id, a.id);
    assert_string_equal(found, uid);
    memset(&got, 0, sizeof(got));
    assert_int_equal(hl_store_key_app(c->st, uid, &got), HL_OK);
    assert_int_equal(got.id, a.id);
    assert_string_equal(got.uid, a.uid);
    assert_int_equal(hl_store_key_app(c->st, "key_unknown", &got), HL_ENOTFOUND);
    assert_int_equal(hl_store_key_revoke(c->st, uid), HL_OK);
    assert_int_equal(hl_store_key_app(c->st, uid, &got), HL_ENOTFOUND);
    assert_int_equal(hl_store_key_find(c->st, h, &got, found), HL_ENOTFOUND);
}

/* The delivery ids of one event, by webhook. */
static int64_t delivery_of(struct ctx *c, int64_t app_id, const struct ev *v, int64_t webhook_id)
{
    struct hl_event got = {0};
    struct hl_delivery *dl = NULL;
    size_t n = 0;
    int64_t id = 0;
    assert_int_equal(hl_store_event_get(c->st, app_id, v->e.uid, &got, &dl, &n), HL_OK);
    for (size_t i = 0; i < n; i++) {
        if (dl[i].webhook_id == webhook_id)
            id = dl[i].id;
        hl_delivery_clear(&dl[i]);
    }
    free(dl);
    hl_event_clear(&got);
    assert_true(id > 0);
    return id;
}

/* Records one attempt of delivery id (webhook wid) with its outcome. */
static void attempt(struct ctx *c, int64_t id, int64_t wid, int64_t started, int64_t dur_us,
                    int code, enum hl_outcome out)
{
    struct hl_attempt at = {.delivery_id = id,
                            .webhook_id = wid,
                            .started_at = started,
                            .duration_us = dur_us,
                            .status_code = code,
                            .error = out == HL_OUT_SUCCESS ? NULL : "HTTP 500",
                            .outcome = out,
                            .next_attempt_at = started + HOUR};
    assert_int_equal(hl_store_record(c->st, &at, 1), HL_OK);
}

/* Pages through a list (limit per page) and writes the ids into got; returns how many. */
static size_t page_all(struct ctx *c, int64_t app_id, int64_t wid,
                       const struct hl_delivery_filter *f, size_t limit, int64_t *got, size_t cap)
{
    size_t total = 0;
    int64_t after = 0;
    for (int round = 0; round < 100; round++) {
        struct hl_delivery *dl = NULL;
        size_t n = 0;
        assert_int_equal(hl_store_delivery_list(c->st, app_id, wid, f, after, limit, &dl, &n),
                         HL_OK);
        assert_true(n <= limit);
        for (size_t i = 0; i < n; i++) {
            assert_true(total < cap);
            got[total++] = dl[i].id;
            after = dl[i].id;
            hl_delivery_clear(&dl[i]);
        }
        free(dl);
        if (n < limit)
            return total;
    }
    fail_msg("the list does not end");
    return 0;
}

/* Whole-app and per-webhook lists, newest first, by keyset pages; by status; failing ones. */
static void c_delivery_lists(struct ctx *c)
{
    struct hl_app a, b;
    make_app(c, &a);
    make_app(c, &b);
    struct hook h1, h2, hb;
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h1);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h2);
    make_hook(c, b.id, HL_ENT_ALL, 0, 1, &hb);
    enum { N = 7 };
    struct ev v[N], vb;
    int64_t d1[N], d2[N];
    for (int i = 0; i < N; i++) {
        assert_int_equal(
            publish(c, a.id, i == 3 ? HL_EV_CONTEXT_CREATED : HL_EV_AGENT_CREATED, &v[i]), 2);
        d1[i] = delivery_of(c, a.id, &v[i], h1.id);
        d2[i] = delivery_of(c, a.id, &v[i], h2.id);
    }
    assert_int_equal(publish(c, b.id, HL_EV_AGENT_CREATED, &vb), 1);
    int64_t now = hl_now_ms();
    /* h1: 0 and 1 succeeded, 2 failing (a failed attempt, more to come), 4 failed for good */
    attempt(c, d1[0], h1.id, now, 1000, 200, HL_OUT_SUCCESS);
    attempt(c, d1[1], h1.id, now, 1000, 200, HL_OUT_SUCCESS);
    attempt(c, d1[2], h1.id, now, 1000, 500, HL_OUT_RETRY);
    attempt(c, d1[4], h1.id, now, 1000, 500, HL_OUT_FAILED);

    int64_t got[4 * N];
    struct hl_delivery_filter any = {.status = -1, .type = -1};
    /* the app: both webhooks', newest first, every page limit long, none twice, not b's */
    for (size_t limit = 1; limit <= 4; limit++) {
        size_t n = page_all(c, a.id, 0, &any, limit, got, 4 * N);
        assert_int_equal(n, 2 * N);
        for (size_t i = 1; i < n; i++)
            assert_true(got[i] < got[i - 1]);
    }
    /* one webhook */
    size_t n = page_all(c, a.id, h1.id, &any, 3, got, 4 * N);
    assert_int_equal(n, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(got[i], d1[N - 1 - i]);
    /* another app's webhook through this app: nothing */
    assert_int_equal(page_all(c, a.id, hb.id, &any, 3, got, 4 * N), 0);

    struct hl_delivery_filter ok = {.status = HL_DS_SUCCEEDED, .type = -1};
    n = page_all(c, a.id, 0, &ok, 1, got, 4 * N);
    assert_int_equal(n, 2);
    assert_int_equal(got[0], d1[1]);
    assert_int_equal(got[1], d1[0]);
    struct hl_delivery_filter failing = {.status = HL_DS_FAILING, .type = -1};
    for (int64_t wid = 0; wid <= h1.id; wid += h1.id) {
        n = page_all(c, a.id, wid, &failing, 2, got, 4 * N);
        assert_int_equal(n, 1);
        assert_int_equal(got[0], d1[2]);
    }
    /* pending as shown: not the failing one */
    struct hl_delivery_filter pending = {.status = HL_DS_PENDING, .type = -1};
    assert_int_equal(page_all(c, a.id, h1.id, &pending, 2, got, 4 * N), N - 4);
    assert_int_equal(page_all(c, a.id, h2.id, &pending, 2, got, 4 * N), N);
    assert_int_equal(page_all(c, a.id, 0, &pending, 3, got, 4 * N), 2 * N - 4);
    struct hl_delivery_filter failed = {.status = HL_DS_FAILED, .type = -1};
    n = page_all(c, a.id, 0, &failed, 5, got, 4 * N);
    assert_int_equal(n, 1);
    assert_int_equal(got[0], d1[4]);
    /* by event */
    struct hl_delivery_filter ctx_ev = {.status = -1, .type = HL_EV_CONTEXT_CREATED};
    n = page_all(c, a.id, 0, &ctx_ev, 5, got, 4 * N);
    assert_int_equal(n, 2);
    assert_int_equal(got[0], d2[3]);
    assert_int_equal(got[1], d1[3]);
    /* a dry run counts what recover picks, picking nothing; then recover picks that many */
    struct hl_recovered count, done;
    assert_int_equal(hl_store_recover_count(c->st, h1.id, now - HOUR, 0, now, &count), HL_OK);
    assert_int_equal(count.failed, 1);
    assert_int_equal(count.failing, 1);
    assert_int_equal(hl_store_recover_count(c->st, h1.id, now + HOUR, 0, now, &count), HL_OK);
    assert_int_equal(count.failed + count.failing, 0);
    assert_int_equal(hl_store_recover(c->st, h1.id, now - HOUR, 0, now, &done), HL_OK);
    assert_int_equal(done.failed, 1);
    assert_int_equal(done.failing, 1);
    /* the failed one queued again is failing now (attempted, last not 2xx) */
    assert_int_equal(hl_store_recover_count(c->st, h1.id, now - HOUR, 0, now, &count), HL_OK);
    assert_int_equal(count.failed, 0);
    assert_int_equal(count.failing, 2);
}

/* A webhook's attempts by time bucket: counts, successes and nearest-rank percentiles. */
static void c_series(struct ctx *c)
{
    struct hl_app a;
    make_app(c, &a);
    struct hook h, other;
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &other);
    struct ev v;
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &v), 2);
    int64_t d = delivery_of(c, a.id, &v, h.id), dx = delivery_of(c, a.id, &v, other.id);
    const int64_t since = 1700000000000, step = MIN;
    /* bucket 0: 20 attempts lasting 20..1 ms (in that order), every fourth one a 500 */
    for (int i = 0; i < 20; i++)
        attempt(c, d, h.id, since + i * SEC, (20 - i) * 1000, i % 4 ? 200 : 500, HL_OUT_RETRY);
    /* bucket 2: one; bucket 59: one at its last millisecond */
    attempt(c, d, h.id, since + 2 * MIN + 5, 7000, 200, HL_OUT_RETRY);
    attempt(c, d, h.id, since + HOUR - 1, 3000, 0, HL_OUT_RETRY);
    /* outside the window, and another webhook's: not counted */
    attempt(c, d, h.id, since - 1, 1, 200, HL_OUT_RETRY);
    attempt(c, d, h.id, since + HOUR, 1, 200, HL_OUT_RETRY);
    attempt(c, dx, other.id, since + 10 * SEC, 1, 200, HL_OUT_RETRY);

    struct hl_series_point *p = NULL;
    size_t n = 0;
    assert_int_equal(hl_store_webhook_series(c->st, h.id, since, since + HOUR, step, &p, &n),
                     HL_OK);
    assert_int_equal(n, 3);
    assert_int_equal(p[0].bucket, 0);
    assert_int_equal(p[0].attempts, 20);
    assert_int_equal(p[0].successes, 15);
    assert_int_equal(p[0].p50_us, 10000); /* the 10th shortest of 1..20 ms */
    assert_int_equal(p[0].p95_us, 19000); /* the 19th */
    assert_int_equal(p[1].bucket, 2);
    assert_int_equal(p[1].attempts, 1);
    assert_int_equal(p[1].successes, 1);
    assert_int_equal(p[1].p50_us, 7000);
    assert_int_equal(p[1].p95_us, 7000);
    assert_int_equal(p[2].bucket, 59);
    assert_int_equal(p[2].successes, 0);
    assert_int_equal(p[2].p95_us, 3000);
    free(p);
    /* one bucket for the whole hour: 22 attempts, ranks 11 and 21 */
    assert_int_equal(hl_store_webhook_series(c->st, h.id, since, since + HOUR, HOUR, &p, &n),
                     HL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(p[0].attempts, 22);
    assert_int_equal(p[0].successes, 16);
    /* 1..20 ms with 3 ms and 7 ms twice: the 11th shortest is 9 ms, the 21st 19 ms */
    assert_int_equal(p[0].p50_us, 9000);
    assert_int_equal(p[0].p95_us, 19000);
    free(p);
    assert_int_equal(hl_store_webhook_series(c->st, h.id, since, since, MIN, &p, &n), HL_EINVAL);
    assert_int_equal(
        hl_store_webhook_series(c->st, h.id + 1000000, since, since + HOUR, MIN, &p, &n), HL_OK);
    assert_int_equal(n, 0);
    free(p);
}

/* ---- retention ---- */

/* Sums prune steps from the first event until one says nothing old is left. */
static void prune_all_max(struct ctx *c, int64_t before, size_t scan, size_t max_events,
                          int dry_run, struct hl_prune_result *sum)
{
    memset(sum, 0, sizeof(*sum));
    struct hl_prune p = {
        .before = before, .scan = scan, .max_events = max_events, .dry_run = dry_run};
    for (int step = 0;; step++) {
        if (step == 100000)
            fail_msg("pruning does not end");
        struct hl_prune_result r;
        assert_int_equal(hl_store_prune(c->st, &p, &r), HL_OK);
        assert_false(r.busy); /* one process: nobody else holds the turn */
        assert_true(r.last_at < before || (r.last_at == p.after_at && r.last_id == p.after_id));
        sum->events += r.events;
        sum->deliveries += r.deliveries;
        sum->attempts += r.attempts;
        sum->kept_owed += r.kept_owed;
        if (max_events)
            assert_true(r.events <= (int64_t)max_events);
        if (r.done)
            break;
        /* a step that is not the last moves on, in creation order */
        assert_true(r.last_at > p.after_at || (r.last_at == p.after_at && r.last_id > p.after_id));
        p.after_at = r.last_at;
        p.after_id = r.last_id;
    }
}

static void prune_all(struct ctx *c, int64_t before, size_t scan, int dry_run,
                      struct hl_prune_result *sum)
{
    prune_all_max(c, before, scan, 0, dry_run, sum);
}

/* How a scenario's delivery ends up before pruning. */
enum fate {
    F_SUCCEEDED,
    F_FAILED,    /* failed after the last retry */
    F_RETRYING,  /* failed, next attempt due later */
    F_PENDING,   /* never attempted */
    F_RESENT,    /* succeeded, then resent: pending again */
    F_PAUSED,    /* its webhook paused */
    F_GONE,      /* answered 410: failed, and its webhook disabled */
    F_PARKED,    /* pending on a webhook that a 410 disabled */
    F_CANCELLED, /* its webhook deleted */
};

static const struct prune_case {
    const char *name;
    enum fate fate;
    int young;  /* created now rather than ten days ago */
    int pruned; /* the event, its delivery and attempts go */
    int attempts;
} prune_cases[] = {
    {"succeeded", F_SUCCEEDED, 0, 1, 1}, {"failed after the last retry", F_FAILED, 0, 1, 1},
    {"retrying", F_RETRYING, 0, 0, 1},   {"pending, never tried", F_PENDING, 0, 0, 0},
    {"resent", F_RESENT, 0, 0, 1},       {"paused webhook", F_PAUSED, 0, 0, 0},
    {"410 gone", F_GONE, 0, 1, 1},       {"held by a disabled webhook", F_PARKED, 0, 0, 0},
    {"cancelled", F_CANCELLED, 0, 1, 0}, {"young and succeeded", F_SUCCEEDED, 1, 0, 1},
};
#define NPRUNE (sizeof(prune_cases) / sizeof(prune_cases[0]))

static void record_one(struct ctx *c, int64_t delivery, int64_t hook, enum hl_outcome out)
{
    int64_t now = hl_now_ms();
    struct hl_attempt at = {.delivery_id = delivery,
                            .webhook_id = hook,
                            .started_at = now,
                            .duration_us = 100,
                            .status_code = out == HL_OUT_SUCCESS ? 200
                                           : out == HL_OUT_GONE  ? 410
                                                                 : 500,
                            .error = out == HL_OUT_SUCCESS ? NULL : "HTTP 500",
                            .response = "ok",
                            .response_len = 2,
                            .outcome = out,
                            .next_attempt_at = now + HOUR};
    if (out == HL_OUT_GONE)
        snprintf(at.disable_reason, sizeof(at.disable_reason), "endpoint answered 410 Gone");
    assert_int_equal(hl_store_record(c->st, &at, 1), HL_OK);
}

/* Whether an event and each of its deliveries are still there. */
static int kept(struct ctx *c, int64_t app_id, const char *uid, const int64_t *dl, size_t ndl)
{
    struct hl_event e = {0};
    int rc = hl_store_event_get(c->st, app_id, uid, &e, NULL, NULL);
    hl_event_clear(&e);
    for (size_t i = 0; i < ndl; i++) {
        struct hl_delivery d = {0};
        int drc = hl_store_delivery_get(c->st, app_id, dl[i], &d, NULL, NULL);
        hl_delivery_clear(&d);
        /* an event goes with all its deliveries or keeps them all */
        assert_int_equal(drc, rc);
    }
    assert_true(rc == HL_OK || rc == HL_ENOTFOUND);
    return rc == HL_OK;
}

static size_t attempts_of(struct ctx *c, int64_t app_id, int64_t delivery)
{
    struct hl_delivery d = {0};
    struct hl_attempt_rec *att = NULL;
    size_t n = 0;
    assert_int_equal(hl_store_delivery_get(c->st, app_id, delivery, &d, &att, &n), HL_OK);
    hl_delivery_clear(&d);
    hl_attempts_free(att, n);
    return n;
}

/* What is pruned and what never is: an old event goes with its deliveries and attempts once
 * none of them is owed; anything owed keeps its event, whatever its age; young events stay. */
static void c_prune(struct ctx *c)
{
    struct hl_app a, quiet;
    make_app(c, &a);
    make_app(c, &quiet); /* no webhooks: its events make no deliveries */
    forget_hooks(c);
    int64_t now = hl_now_ms(), old = now - 10 * DAY;
    struct hook hk[NPRUNE];
    struct ev v[NPRUNE];
    int64_t dl[NPRUNE];
    for (size_t i = 0; i < NPRUNE; i++) {
        /* a webhook of its own each (F_PARKED shares F_GONE's, which the 410 disables) */
        if (prune_cases[i].fate == F_PARKED)
            hk[i] = hk[i - 1];
        else
            make_hook(c, a.id, HL_ENT_ALL, 0, 1, &hk[i]);
        ev_init(&v[i], a.id, HL_EV_AGENT_UPDATED, "t", "agent-p", prune_cases[i].young ? now : old);
        int64_t made = 0;
        assert_int_equal(publish_ev(c, &v[i], hk[i].id, &made), HL_OK);
        assert_int_equal(made, 1);
    }
    /* one event, two deliveries: one succeeded, one still retrying */
    struct hook m1, m2;
    make_hook(c, quiet.id, HL_ENT_ALL, 0, 1, &m1);
    make_hook(c, quiet.id, HL_ENT_ALL, 0, 1, &m2);
    struct ev mixed, none;
    ev_init(&mixed, quiet.id, HL_EV_AGENT_UPDATED, "t", "agent-m", old);
    int64_t made = 0;
    assert_int_equal(publish_ev(c, &mixed, 0, &made), HL_OK);
    assert_int_equal(made, 2);
    struct jobs j = {0};
    /* the clock now, not at the start: publishing can take seconds on a loaded machine */
    int64_t t = hl_now_ms();
    claim_mine(c, t + SEC, t + HOUR, NULL, 0, &j);
    assert_int_equal(j.n, NPRUNE + 2);
    for (size_t i = 0; i < NPRUNE; i++) {
        dl[i] = 0;
        for (size_t k = 0; k < j.n; k++)
            if (strcmp(j.v[k].event_uid, v[i].e.uid) == 0)
                dl[i] = j.v[k].delivery_id;
    }
    int64_t mixed_dl[2] = {job_of(&j, m1.id)->delivery_id, job_of(&j, m2.id)->delivery_id};
    jobs_free(&j);
    for (size_t i = 0; i < NPRUNE; i++) {
        enum fate f = prune_cases[i].fate;
        assert_true(dl[i] > 0);
        if (f == F_SUCCEEDED || f == F_RESENT)
            record_one(c, dl[i], hk[i].id, HL_OUT_SUCCESS);
        else if (f == F_FAILED)
            record_one(c, dl[i], hk[i].id, HL_OUT_FAILED);
        else if (f == F_RETRYING)
            record_one(c, dl[i], hk[i].id, HL_OUT_RETRY);
        else if (f == F_GONE)
            record_one(c, dl[i], hk[i].id, HL_OUT_GONE);
        if (f == F_RESENT)
            assert_int_equal(hl_store_delivery_resend(c->st, a.id, dl[i], hl_now_ms()), HL_OK);
        if (f == F_PAUSED)
            set_active(c, a.id, &hk[i], 0, hl_now_ms());
        if (f == F_CANCELLED)
            assert_int_equal(hl_store_webhook_delete(c->st, a.id, hk[i].uid, hl_now_ms()), HL_OK);
    }
    record_one(c, mixed_dl[0], m1.id, HL_OUT_SUCCESS);
    record_one(c, mixed_dl[1], m2.id, HL_OUT_RETRY);
    for (size_t i = 0; i < NPRUNE; i++) /* every fate counted as its list shows it */
        expect_counts(c, a.id, hk[i].id);
    /* an old event that made no delivery at all */
    struct hl_app lone;
    make_app(c, &lone);
    ev_init(&none, lone.id, HL_EV_CONTEXT_CREATED, "t", "context-n", old);
    made = 0;
    assert_int_equal(publish_ev(c, &none, 0, &made), HL_OK);
    assert_int_equal(made, 0);

    int64_t want_ev = 1, want_dl = 0, want_att = 0, want_owed = 1; /* "none"; the mixed event */
    for (size_t i = 0; i < NPRUNE; i++) {
        const struct prune_case *pc = &prune_cases[i];
        expect_delivery(c, a.id, dl[i],
                        pc->fate == F_SUCCEEDED                        ? HL_DS_SUCCEEDED
                        : pc->fate == F_FAILED || pc->fate == F_GONE   ? HL_DS_FAILED
                        : pc->fate == F_PAUSED || pc->fate == F_PARKED ? HL_DS_PAUSED
                        : pc->fate == F_CANCELLED                      ? HL_DS_CANCELLED
                        : pc->fate == F_RETRYING                       ? HL_DS_FAILING
                                                                       : HL_DS_PENDING,
                        pc->attempts);
        want_ev += pc->pruned;
        want_dl += pc->pruned;
        want_att += pc->pruned ? pc->attempts : 0;
        want_owed += !pc->pruned && !pc->young;
    }

    /* a dry run counts and removes nothing */
    struct hl_pruned t0, t1;
    hl_store_pruned(c->st, &t0);
    struct hl_prune_result dry, sum;
    prune_all(c, now - DAY, 3, 1, &dry);
    for (size_t i = 0; i < NPRUNE; i++)
        assert_true(kept(c, a.id, v[i].e.uid, &dl[i], 1));
    assert_true(kept(c, lone.id, none.e.uid, NULL, 0));
    hl_store_pruned(c->st, &t1);
    assert_int_equal(t1.events, t0.events);

    /* steps that look at five events and remove at most two */
    prune_all_max(c, now - DAY, 5, 2, 0, &sum);
    if (!c->be->shared) {
        assert_int_equal(dry.events, want_ev);
        assert_int_equal(dry.deliveries, want_dl);
        assert_int_equal(dry.attempts, want_att);
        assert_int_equal(dry.kept_owed, want_owed);
        assert_int_equal(sum.events, want_ev);
        assert_int_equal(sum.deliveries, want_dl);
        assert_int_equal(sum.attempts, want_att);
        assert_int_equal(sum.kept_owed, want_owed);
    } else {
        assert_true(sum.events >= want_ev && sum.deliveries >= want_dl);
        assert_true(sum.attempts >= want_att && sum.kept_owed >= want_owed);
    }
    hl_store_pruned(c->st, &t1);
    assert_int_equal(t1.events - t0.events, (uint64_t)sum.events);
    assert_int_equal(t1.deliveries - t0.deliveries, (uint64_t)sum.deliveries);
    assert_int_equal(t1.attempts - t0.attempts, (uint64_t)sum.attempts);

    for (size_t i = 0; i < NPRUNE; i++) {
        print_message("prune: %s\n", prune_cases[i].name);
        assert_int_equal(kept(c, a.id, v[i].e.uid, &dl[i], 1), !prune_cases[i].pruned);
        assert_int_equal(event_logged(c, a.id, v[i].e.uid), !prune_cases[i].pruned);
        if (!prune_cases[i].pruned)
            assert_int_equal(attempts_of(c, a.id, dl[i]), (size_t)prune_cases[i].attempts);
    }
    assert_false(kept(c, lone.id, none.e.uid, NULL, 0));
    /* the mixed event keeps both deliveries and the succeeded one's attempt */
    assert_true(kept(c, quiet.id, mixed.e.uid, mixed_dl, 2));
    assert_int_equal(attempts_of(c, quiet.id, mixed_dl[0]), 1);

    /* nothing more goes until something becomes final */
    prune_all(c, now - DAY, 50, 0, &sum);
    if (!c->be->shared)
        assert_int_equal(sum.events, 0);
    for (size_t i = 0; i < NPRUNE; i++)
        if (prune_cases[i].fate == F_RETRYING)
            record_one(c, dl[i], hk[i].id, HL_OUT_FAILED);
    record_one(c, mixed_dl[1], m2.id, HL_OUT_SUCCESS);
    prune_all(c, now - DAY, 50, 0, &sum);
    if (!c->be->shared) {
        assert_int_equal(sum.events, 2);
        assert_int_equal(sum.deliveries, 3);
        assert_int_equal(sum.attempts, 5);
    }
    assert_false(kept(c, quiet.id, mixed.e.uid, mixed_dl, 2));
    for (size_t i = 0; i < NPRUNE; i++)
        if (prune_cases[i].fate == F_RETRYING)
            assert_false(kept(c, a.id, v[i].e.uid, &dl[i], 1));
    /* the counts are of the deliveries kept */
    for (size_t i = 0; i < NPRUNE; i++)
        expect_counts(c, a.id, hk[i].id);
    expect_stats(expect_counts(c, quiet.id, m2.id), 0, 0, 0, 0);
    /* the oldest event left is an old one still owed */
    int64_t oldest = 0;
    assert_int_equal(hl_store_oldest_event(c->st, &oldest), HL_OK);
    if (!c->be->shared)
        assert_int_equal(oldest, old);
    /* a cutoff before everything prunes nothing */
    prune_all(c, old - DAY, 50, 0, &sum);
    if (!c->be->shared)
        assert_int_equal(sum.events, 0);
}

/* Bad steps are refused. */
static void c_prune_args(struct ctx *c)
{
    struct hl_prune_result r;
    struct hl_prune p = {.before = hl_now_ms(), .scan = 0};
    assert_int_equal(hl_store_prune(c->st, &p, &r), HL_EINVAL);
    p.scan = HL_PRUNE_SCAN_MAX + 1;
    assert_int_equal(hl_store_prune(c->st, &p, &r), HL_EINVAL);
    /* after the last event: nothing to see, done */
    p.scan = 10;
    p.after_at = INT64_MAX - 1;
    assert_int_equal(hl_store_prune(c->st, &p, &r), HL_OK);
    assert_true(r.done);
    assert_int_equal(r.events + r.kept_owed, 0);
}

/* Idempotency keys go when their window ends, not before. */
static void c_idem_expire(struct ctx *c)
{
    struct hl_app a;
    make_app(c, &a);
    char key[HL_ID_MAX];
    new_uid("idem-", key);
    struct hl_idem idem = {.key = key, .status = 201, .response = "{}"};
    sha256("one", idem.request_hash);
    struct ev v;
    ev_init(&v, a.id, HL_EV_AGENT_CREATED, "t", "agent-1", hl_now_ms());
    struct hl_change ch = {.op = HL_OP_NONE, .ev = &v.e};
    assert_int_equal(hl_store_commit(c->st, &ch, 1, &idem, NULL), HL_OK);
    int64_t now = hl_now_ms(), n = -1;
    struct hl_idem_hit hit;

    /* inside its window: kept */
    assert_int_equal(hl_store_idem_expire(c->st, now - HL_IDEM_WINDOW_MS, 1000, 0, &n), HL_OK);
    assert_int_equal(hl_store_idem_get(c->st, a.id, key, 0, &hit), HL_OK);
    free(hit.response);
    /* its window over: counted by a dry run, then gone */
    assert_int_equal(hl_store_idem_expire(c->st, now + SEC, 1000, 1, &n), HL_OK);
    assert_true(c->be->shared ? n >= 1 : n == 1);
    assert_int_equal(hl_store_idem_get(c->st, a.id, key, 0, &hit), HL_OK);
    free(hit.response);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(hl_store_idem_expire(c->st, now + SEC, 1, 0, &n), HL_OK);
        if (n == 0)
            break;
        assert_int_equal(n, 1); /* at most max at a time */
    }
    assert_int_equal(hl_store_idem_get(c->st, a.id, key, 0, &hit), HL_ENOTFOUND);
}

/* Successful attempts keep the start of the answer; failures what the dispatcher captured. */
static void c_response_keep(struct ctx *c)
{
    struct hl_app a;
    struct hook h;
    struct ev v[2];
    struct jobs j = {0};
    forget_hooks(c);
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    for (int i = 0; i < 2; i++)
        assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &v[i]), 1);
    int64_t now = hl_now_ms();
    claim_mine(c, now, now + HOUR, NULL, 0, &j);
    assert_int_equal(j.n, 2);
    static char big[4096];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < 2; i++) {
        struct hl_attempt at = {.delivery_id = j.v[i].delivery_id,
                                .webhook_id = h.id,
                                .started_at = now,
                                .status_code = i ? 500 : 200,
                                .error = i ? "HTTP 500" : NULL,
                                .response = big,
                                .response_len = sizeof(big),
                                .outcome = i ? HL_OUT_FAILED : HL_OUT_SUCCESS};
        assert_int_equal(hl_store_record(c->st, &at, 1), HL_OK);
        struct hl_delivery d = {0};
        struct hl_attempt_rec *rec = NULL;
        size_t n = 0;
        assert_int_equal(hl_store_delivery_get(c->st, a.id, at.delivery_id, &d, &rec, &n), HL_OK);
        assert_int_equal(n, 1);
        size_t want = i ? sizeof(big) : HL_SUCCESS_RESPONSE_KEEP;
        assert_int_equal(rec[0].response_len, want);
        assert_memory_equal(rec[0].response, big, want);
        hl_delivery_clear(&d);
        hl_attempts_free(rec, n);
    }
    jobs_free(&j);
}

/* The database's size, and what pruning frees coming back. */
static void c_space(struct ctx *c)
{
    struct hl_store_space sp;
    assert_int_equal(hl_store_space(c->st, &sp), HL_OK);
    assert_true(sp.bytes > 0);
    assert_true(sp.free_bytes >= 0);
    /* a new SQLite file gives freed pages back as it goes; PostgreSQL has autovacuum */
    assert_true(sp.reclaims);
}

/* A new app with one webhook and two events published to it in this order, their deliveries
 * claimed (leased for an hour); returns the webhook's id. */
static int64_t two_claimed(struct ctx *c, struct hl_app *a, struct ev *first, int64_t *first_dl,
                           struct ev *second, int64_t *second_dl)
{
    struct hook h;
    struct jobs j = {0};
    forget_hooks(c);
    make_app(c, a);
    make_hook(c, a->id, HL_ENT_ALL, 0, 1, &h);
    assert_int_equal(publish(c, a->id, HL_EV_AGENT_CREATED, first), 1);
    assert_int_equal(publish(c, a->id, HL_EV_AGENT_UPDATED, second), 1);
    int64_t now = hl_now_ms();
    claim_mine(c, now, now + HOUR, NULL, 0, &j);
    assert_int_equal(j.n, 2);
    int f = strcmp(j.v[0].event_uid, first->e.uid) == 0 ? 0 : 1;
    *first_dl = j.v[f].delivery_id;
    *second_dl = j.v[1 - f].delivery_id;
    jobs_free(&j);
    return h.id;
}

/* Waits (up to 30 s on a loaded machine) until the pruner has removed the event; 1 when it has.
 * Only the event is read while the pruner runs: a step may fall between two reads. */
static int pruned_soon(struct ctx *c, int64_t app_id, const char *uid)
{
    for (int i = 0; i < 3000; i++) {
        struct hl_event e = {0};
        int gone = hl_store_event_get(c->st, app_id, uid, &e, NULL, NULL) == HL_ENOTFOUND;
        hl_event_clear(&e);
        if (gone)
            return 1;
        usleep(10000);
    }
    return 0;
}

/* The background pruner removes what is final and old, keeps what is owed, and stops. */
static void c_pruner(struct ctx *c)
{
    struct hl_app a;
    struct ev done, owed;
    int64_t dd, od;
    int64_t hook = two_claimed(c, &a, &done, &dd, &owed, &od);
    record_one(c, dd, hook, HL_OUT_SUCCESS);
    record_one(c, od, hook, HL_OUT_RETRY);
    struct hl_pruned t0, t1;
    hl_store_pruned(c->st, &t0);

    /* a retention of 1 ms: every event is old at once */
    struct hl_pruner *pr = NULL;
    struct hl_pruner_config bad = {.retention_ms = 0}, cfg = {.retention_ms = 1};
    assert_int_equal(hl_pruner_start(c->st, &bad, &pr), HL_EINVAL);
    assert_null(pr);
    assert_int_equal(hl_pruner_start(c->st, &cfg, &pr), HL_OK);
    int gone = pruned_soon(c, a.id, done.e.uid);
    hl_pruner_stop(pr);
    assert_true(gone);
    assert_false(kept(c, a.id, done.e.uid, &dd, 1)); /* its delivery went with it */
    assert_true(kept(c, a.id, owed.e.uid, &od, 1));
    assert_int_equal(attempts_of(c, a.id, od), 1);
    hl_store_pruned(c->st, &t1);
    assert_true(t1.events > t0.events && t1.deliveries > t0.deliveries);
    assert_true(t1.attempts > t0.attempts);
    hl_pruner_stop(NULL);
}

/* An event still owed when the pruner's cursor passed it (a dispatcher more than a retention
 * behind) goes once its delivery is final, within the same run: a later pass looks at it again
 * (it used to wait for a pass from the beginning, every 10 minutes whatever the retention). */
static void c_pruner_revisits(struct ctx *c)
{
    struct hl_app a;
    struct ev owed, done;
    int64_t od, dd;
    /* owed first: the cursor passes it before it reaches done */
    int64_t hook = two_claimed(c, &a, &owed, &od, &done, &dd);
    record_one(c, od, hook, HL_OUT_RETRY);
    record_one(c, dd, hook, HL_OUT_SUCCESS);

    struct hl_pruner *pr = NULL;
    struct hl_pruner_config cfg = {.retention_ms = 1};
    assert_int_equal(hl_pruner_start(c->st, &cfg, &pr), HL_OK);
    int done_gone = pruned_soon(c, a.id, done.e.uid); /* the cursor is past owed now */
    int owed_kept = kept(c, a.id, owed.e.uid, &od, 1);
    record_one(c, od, hook, HL_OUT_FAILED); /* final now: nothing owed any more */
    int owed_gone = pruned_soon(c, a.id, owed.e.uid);
    hl_pruner_stop(pr);
    assert_true(done_gone);
    assert_true(owed_kept);
    assert_true(owed_gone);
    assert_false(kept(c, a.id, owed.e.uid, &od, 1));
}

/* The pruner's pace: clock-timed steps shrink when slow and grow when fast; a pruner seconds
 * behind keeps steps and waits that let it catch up on a machine too busy for the clock. */
static void c_prune_pace(struct ctx *c)
{
    struct hl_prune_pace pc;
    hl_prune_pace_init(&pc, c->st);
    assert_int_equal(pc.target_us, hl_store_one_writer(c->st) ? 2000 : 50000);
    struct hl_prune q = {0};
    struct hl_prune_result slow = {.write_us = 100 * pc.target_us}, fast = {.write_us = 10};
    for (int i = 0; i < 20; i++) { /* in time: down to one event a step, waits 3x the step */
        hl_prune_pace_step(&pc, &q);
        slow.events = (int64_t)q.max_events;
        assert_int_equal(hl_prune_pace_done(&pc, &slow, 0), 3 * slow.write_us / 1000);
    }
    hl_prune_pace_step(&pc, &q);
    assert_int_equal(q.max_events, 1);
    for (int i = 0; i < 20; i++) { /* ten seconds behind: 32 events a step, 20 ms waits */
        slow.events = (int64_t)q.max_events;
        assert_int_equal(hl_prune_pace_done(&pc, &slow, 10000), 20);
        hl_prune_pace_step(&pc, &q);
        assert_int_equal(q.max_events, 32);
    }
    for (int i = 0; i < 40; i++) { /* fast steps grow to the largest, the scan with them */
        fast.events = (int64_t)q.max_events;
        assert_int_equal(hl_prune_pace_done(&pc, &fast, 0), 5);
        hl_prune_pace_step(&pc, &q);
    }
    assert_int_equal(q.max_events, 1024);
    assert_true(q.scan > q.max_events && q.scan <= HL_PRUNE_SCAN_MAX);
}

/* ---- retention on SQLite: pages given back, old files compacted, stored payloads ---- */

/* An event with a payload of n bytes that packing cannot shrink much. */
static void big_event(struct hl_event *e, int64_t app_id, int64_t at, char *buf, size_t n,
                      unsigned seed)
{
    memset(e, 0, sizeof(*e));
    new_uid("evt_", e->uid);
    e->type = HL_EV_AGENT_UPDATED;
    e->app_id = app_id;
    e->tenant = (char *)"t";
    snprintf(e->resource_uid, sizeof(e->resource_uid), "agent-big");
    e->created_at = at;
    size_t k = (size_t)snprintf(buf, n, "{\"eventId\":\"%s\",\"noise\":\"", e->uid);
    for (; k < n - 2; k++) {
        seed = seed * 1103515245u + 12345u;
        buf[k] = (char)('!' + (seed >> 16) % 90);
        if (buf[k] == '"' || buf[k] == '\\')
            buf[k] = 'x';
    }
    buf[n - 2] = '"';
    buf[n - 1] = '}';
    e->payload = buf;
    e->payload_len = n;
}

/* Publishes n old events of about 2 KB, without deliveries, in one app. */
static void publish_big(struct hl_store *st, int64_t app_id, int n, int64_t at)
{
    static char buf[2048];
    for (int i = 0; i < n; i++) {
        struct hl_event e;
        big_event(&e, app_id, at, buf, sizeof(buf), (unsigned)i * 7919u + 1);
        struct hl_change ch = {.op = HL_OP_NONE, .ev = &e};
        assert_int_equal(hl_store_commit(st, &ch, 1, NULL, NULL), HL_OK);
    }
}

static int64_t file_bytes(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return (int64_t)sb.st_size;
}

static void s_release_space(struct ctx *c)
{
    struct hl_app a;
    make_app(c, &a);
    int64_t old = hl_now_ms() - 10 * DAY;
    publish_big(c->st, a.id, 2000, old);
    struct hl_prune_result sum;
    prune_all(c, old + 1, 256, 0, &sum);
    assert_int_equal(sum.events, 2000);
    struct hl_store_space before, after;
    assert_int_equal(hl_store_space(c->st, &before), HL_OK);
    assert_true(before.reclaims);
    assert_true(before.free_bytes > 2000 * 1024); /* the events' pages, free inside the file */
    reopen(c);
    int64_t size0 = file_bytes(c->url);
    int64_t total = 0;
    for (int i = 0;; i++) {
        assert_true(i < 100000);
        int64_t got = -1;
        assert_int_equal(hl_store_release_space(c->st, &got), HL_OK);
        assert_true(got >= 0 && got <= 128 * 65536); /* one bounded step */
        if (got == 0)
            break;
        total += got;
    }
    assert_int_equal(hl_store_space(c->st, &after), HL_OK);
    assert_true(total > 0);
    assert_true(after.free_bytes < before.free_bytes / 4);
    reopen(c);
    assert_true(file_bytes(c->url) <= size0 - total + 65536);
    /* what is left is whole: a new event and its delivery go in and come out */
    struct hook h;
    struct ev v;
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &v), 1);
    assert_true(event_logged(c, a.id, v.e.uid));
}

static void s_compact_old_file(struct ctx *c)
{
    /* a file made the way hookline made them before: WAL first, so auto-vacuum stays off */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/old-format-%u.db", tmpdir, ++sqlite_seq);
    sqlite3 *raw = NULL;
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, "PRAGMA journal_mode = WAL", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    char err[256];
    struct hl_store *st = NULL;
    assert_int_equal(hl_store_open(path, &st, err, sizeof(err)), HL_OK);
    struct hl_store_space sp;
    assert_int_equal(hl_store_space(st, &sp), HL_OK);
    assert_false(sp.reclaims);
    char uid[HL_ID_MAX];
    new_uid("app-", uid);
    struct hl_app a;
    assert_int_equal(hl_store_app_create(st, uid, "old", &a), HL_OK);
    int64_t old = hl_now_ms() - 10 * DAY;
    publish_big(st, a.id, 1000, old);
    struct ev young;
    ev_init(&young, a.id, HL_EV_AGENT_CREATED, "t", "agent-y", hl_now_ms());
    struct hl_change ch = {.op = HL_OP_NONE, .ev = &young.e};
    assert_int_equal(hl_store_commit(st, &ch, 1, NULL, NULL), HL_OK);
    struct hl_store *keep = c->st;
    c->st = st;
    struct hl_prune_result sum;
    prune_all(c, old + 1, 256, 0, &sum);
    c->st = keep;
    assert_int_equal(sum.events, 1000);
    /* nothing given back without auto-vacuum */
    int64_t got = -1;
    assert_int_equal(hl_store_release_space(st, &got), HL_OK);
    assert_int_equal(got, 0);
    struct hl_store_space before, after;
    assert_int_equal(hl_store_space(st, &before), HL_OK);
    assert_true(before.free_bytes > 1000 * 1024);
    assert_int_equal(hl_store_lock(st, err, sizeof(err)), HL_OK);
    assert_int_equal(hl_store_compact(st, NULL, NULL, err, sizeof(err)), HL_OK);
    assert_int_equal(hl_store_space(st, &after), HL_OK);
    assert_true(after.reclaims);
    assert_int_equal(after.free_bytes, 0);
    struct hl_event e = {0};
    assert_int_equal(hl_store_event_get(st, a.id, young.e.uid, &e, NULL, NULL), HL_OK);
    assert_int_equal(e.payload_len, young.e.payload_len);
    assert_memory_equal(e.payload, young.e.payload, e.payload_len);
    hl_event_clear(&e);
    hl_store_close(st);
    assert_true(file_bytes(path) < before.bytes - 1000 * 1024);
}

/* Compacting a file larger than the WAL's hard bound (8,192 frames): the VACUUM's own commit
 * crosses it, and the store must not checkpoint in that commit's hook while compaction holds
 * the checkpoints' turn (it would wait for itself). */
static void s_compact_large(struct ctx *c)
{
    sqlite3 *raw = NULL;
    assert_int_equal(sqlite3_open(c->url, &raw), SQLITE_OK);
    sqlite3_busy_timeout(raw, 5000);
    assert_int_equal(sqlite3_exec(raw,
                                  "CREATE TABLE ballast(b BLOB);"
                                  "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                                  " WHERE i < 9000) INSERT INTO ballast SELECT randomblob(4000)"
                                  " FROM n;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(raw);
    char err[256];
    assert_int_equal(hl_store_lock(c->st, err, sizeof(err)), HL_OK);
    assert_int_equal(hl_store_compact(c->st, NULL, NULL, err, sizeof(err)), HL_OK);
    struct hl_store_space sp;
    assert_int_equal(hl_store_space(c->st, &sp), HL_OK);
    assert_true(sp.bytes > 9000 * 4000);
}

/* Payloads are packed on disk, come back byte for byte, and rows written with a payload as it
 * is (before packing, or by hand) read the same. */
static void s_stored_payloads(struct ctx *c)
{
    struct hl_app a;
    struct hook h;
    struct ev v;
    forget_hooks(c);
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &v), 1);
    sqlite3 *raw = NULL;
    assert_int_equal(sqlite3_open(c->url, &raw), SQLITE_OK);
    sqlite3_busy_timeout(raw, 5000);
    sqlite3_stmt *q = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(raw, "SELECT payload FROM events WHERE uid = ?1", -1, &q, NULL),
        SQLITE_OK);
    sqlite3_bind_text(q, 1, v.e.uid, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    const unsigned char *stored = sqlite3_column_blob(q, 0);
    int len = sqlite3_column_bytes(q, 0);
    assert_int_equal(stored[0], 0x01);          /* packed */
    assert_true((size_t)len < v.e.payload_len); /* and smaller */
    sqlite3_finalize(q);

    /* a row with the payload as it is, and a delivery for it */
    const char *plain = "{\"eventId\":\"evt_plain\",\"event\":\"agent.updated\",\"data\":{\"uid\":"
                        "\"agent-plain\",\"n\":\"caf\xc3\xa9\"}}";
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "INSERT INTO events(uid, app_id, type, tenant, resource_uid, created_at, payload)"
             " VALUES('evt_plain', %lld, %d, 't', 'agent-plain', %lld, CAST('%s' AS BLOB));"
             "INSERT INTO deliveries(event_id, webhook_id, status, next_attempt_at, created_at)"
             " SELECT id, %lld, 0, 0, 0 FROM events WHERE uid = 'evt_plain';",
             (long long)a.id, HL_EV_AGENT_UPDATED, (long long)hl_now_ms(), plain, (long long)h.id);
    assert_int_equal(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
    struct hl_event e = {0};
    assert_int_equal(hl_store_event_get(c->st, a.id, "evt_plain", &e, NULL, NULL), HL_OK);
    assert_int_equal(e.payload_len, strlen(plain));
    assert_memory_equal(e.payload, plain, e.payload_len);
    hl_event_clear(&e);
    struct jobs j = {0};
    int64_t now = hl_now_ms();
    claim_mine(c, now, now + HOUR, NULL, 0, &j);
    assert_int_equal(j.n, 2);
    for (size_t i = 0; i < j.n; i++) {
        const char *want = strcmp(j.v[i].event_uid, "evt_plain") == 0 ? plain : v.payload;
        assert_int_equal(j.v[i].payload_len, strlen(want));
        assert_memory_equal(j.v[i].payload, want, j.v[i].payload_len);
    }
    jobs_free(&j);

    /* a damaged packed payload is an error, never other bytes */
    snprintf(sql, sizeof(sql),
             "UPDATE events SET payload = substr(payload, 1, length(payload) - 4) WHERE uid = '%s'",
             v.e.uid);
    assert_int_equal(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    assert_int_equal(hl_store_event_get(c->st, a.id, v.e.uid, &e, NULL, NULL), HL_ESTORE);
}

/* A commit's claim hook (hl_store_claim_hook), as the dispatcher's: what it was asked and given. */
struct claim_spy {
    int answer;   /* begin's: claim or not */
    size_t max;   /* the claim's max */
    int64_t skip; /* a busy webhook (0: none) */
    int quiet;    /* end's answer */
    int begun, ended, rc;
    int64_t from, upto;
    struct jobs got;
};

static int spy_begin(void *arg, struct hl_claim *c)
{
    struct claim_spy *s = arg;
    int64_t now = hl_now_ms();
    s->begun++;
    *c = (struct hl_claim){.now = now,
                           .lease_until = now + HOUR,
                           .max = s->max,
                           .skip = &s->skip,
                           .nskip = s->skip != 0};
    return s->answer;
}

static int spy_end(void *arg, int rc, struct hl_job *jobs, size_t n, int64_t from, int64_t upto)
{
    struct claim_spy *s = arg;
    s->ended++;
    s->rc = rc;
    s->from = from;
    s->upto = upto;
    for (size_t i = 0; i < n; i++) {
        s->got.v = realloc(s->got.v, (s->got.n + 1) * sizeof(*s->got.v));
        assert_non_null(s->got.v);
        s->got.v[s->got.n++] = jobs[i];
    }
    free(jobs);
    return s->quiet;
}

/* Publishes an event; returns how far the store's wake sequence moved meanwhile. */
static uint64_t publish_woke(struct ctx *c, int64_t app_id, struct ev *e, int64_t made)
{
    uint64_t seq = hl_store_wake_seq(c->st);
    assert_int_equal(publish(c, app_id, HL_EV_AGENT_CREATED, e), made);
    return hl_store_wake_seq(c->st) - seq;
}

/* SQLite's group commit claims the deliveries a batch made inside its transaction, as the hook
 * says (issue 19: a claim of their own waited for the writer behind the next batch): the jobs
 * leased and handed over before the commit returns, busy webhooks' left for later claims, no
 * wake-up when the hook took everything; none when the hook declines or is gone. */
static void s_commit_claim(struct ctx *c)
{
    struct hl_app a;
    struct hook w1, w2;
    struct ev e;
    struct jobs j = {0};
    struct claim_spy spy = {.answer = 1, .max = 64, .quiet = 1};
    forget_hooks(c);
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &w1);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &w2);
    spy.skip = w2.id;
    struct hl_claim_hook hook = {.begin = spy_begin, .end = spy_end, .arg = &spy};
    hl_store_claim_hook(c->st, &hook);

    /* w1's claimed and handed over by the commit; w2 (busy) left; the hook took all it could */
    assert_int_equal(publish_woke(c, a.id, &e, 2), 0);
    assert_int_equal(spy.begun, 1);
    assert_int_equal(spy.ended, 1);
    assert_int_equal(spy.rc, HL_OK);
    assert_int_equal(spy.got.n, 1);
    const struct hl_job *got = &spy.got.v[0];
    assert_int_equal(got->webhook_id, w1.id);
    assert_string_equal(got->event_uid, e.e.uid);
    assert_true(got->payload_len > 0 && got->payload[0] == '{'); /* unpacked */
    assert_true(spy.from < got->delivery_id && got->delivery_id <= spy.upto);
    int64_t first = got->delivery_id; /* got moves with spy.got */
    int64_t now = hl_now_ms();
    claim_mine(c, now, now + HOUR, NULL, 0, &j); /* w1's is leased: only w2's is left */
    assert_int_equal(j.n, 1);
    assert_int_equal(j.v[0].webhook_id, w2.id);

    /* the hook wants a wake-up: the commit notifies */
    spy.quiet = 0;
    assert_int_equal(publish_woke(c, a.id, &e, 2), 1);
    /* a claim that passes over a due delivery (its max) says it did not see everything */
    spy.skip = 0;
    spy.max = 1;
    publish_woke(c, a.id, &e, 2);
    assert_int_equal(spy.ended, 3);
    assert_int_equal(spy.upto, 0);
    assert_int_equal(spy.got.n, 3);
    /* declined: no end, a wake-up, and the deliveries claimable as before */
    spy.answer = 0;
    assert_int_equal(publish_woke(c, a.id, &e, 2), 1);
    assert_int_equal(spy.begun, 4);
    assert_int_equal(spy.ended, 3);
    /* attempt records alone make no deliveries of a change: no claim */
    struct hl_attempt at = {.delivery_id = first,
                            .webhook_id = w1.id,
                            .started_at = now,
                            .duration_us = 100,
                            .status_code = 200,
                            .outcome = HL_OUT_SUCCESS};
    assert_int_equal(hl_store_record(c->st, &at, 1), HL_OK);
    assert_int_equal(spy.begun, 4);
    /* gone: commits claim nothing for it */
    hl_store_claim_hook(c->st, NULL);
    spy.answer = 1;
    assert_int_equal(publish_woke(c, a.id, &e, 2), 1);
    assert_int_equal(spy.begun, 4);
    now = hl_now_ms();
    /* everything neither handed over nor claimed above: w2's of the second event, the one the
     * third's claim passed over, and both of the last two */
    claim_mine(c, now, now + HOUR, NULL, 0, &j);
    assert_int_equal(j.n, 1 + 1 + 2 + 2);
    jobs_free(&j);
    jobs_free(&spy.got);
}

/* A reader that reads one event again and again until told to stop. */
struct rereader {
    struct hl_store *st;
    int64_t app_id;
    const char *uid;
    int stop;
    long reads;
};

static void *reread(void *arg)
{
    struct rereader *r = arg;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        struct hl_event e = {0};
        if (hl_store_event_get(r->st, r->app_id, r->uid, &e, NULL, NULL) == HL_OK)
            r->reads++;
        hl_event_clear(&e);
    }
    return NULL;
}

/* Checkpoints are not the commits' work: while this thread commits batches of events, writing
 * 48 MiB of WAL, and another reads all along, the database file is synced (in WAL mode only a
 * checkpoint does that) again and again, never by this thread, although each commit led its own
 * batch; and the WAL starts over in spite of the reader: its file stays within the hard bound
 * (8,192 frames and one commit's, 33 MiB), where without checkpoints it would hold all 48. */
static void s_checkpoint_apart(struct ctx *c)
{
    enum { N = 64 };
    struct hl_app a;
    struct hook h;
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    struct ev *v = calloc(N, sizeof(*v));
    assert_non_null(v);
    struct hl_change ch[N];
    struct ev first;
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &first), 1);
    struct rereader rr = {c->st, a.id, first.e.uid, 0, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reread, &rr), 0);
    pthread_mutex_lock(&F.mu);
    F.watching = 1;
    F.watched = pthread_self();
    F.wal_bytes = F.db_syncs = F.db_syncs_watched = 0;
    pthread_mutex_unlock(&F.mu);
    int64_t wal = 0, deadline = hl_mono_ms() + 120 * SEC, commits = 0;
    while (wal < (48 << 20) && hl_mono_ms() < deadline) {
        for (int i = 0; i < N; i++) {
            ev_init(&v[i], a.id, HL_EV_AGENT_UPDATED, "tenant-1", "agent-x", hl_now_ms());
            ch[i] = (struct hl_change){.op = HL_OP_NONE, .ev = &v[i].e};
        }
        assert_int_equal(hl_store_commit(c->st, ch, N, NULL, NULL), HL_OK);
        commits++;
        pthread_mutex_lock(&F.mu);
        wal = F.wal_bytes;
        pthread_mutex_unlock(&F.mu);
    }
    pthread_mutex_lock(&F.mu);
    F.watching = 0;
    int syncs = F.db_syncs, mine = F.db_syncs_watched;
    pthread_mutex_unlock(&F.mu);
    __atomic_store_n(&rr.stop, 1, __ATOMIC_RELEASE);
    assert_int_equal(pthread_join(th, NULL), 0);
    free(v);
    print_message("%lld commits wrote %lld MiB of WAL beside %ld reads; %d syncs of the database "
                  "file\n",
                  (long long)commits, (long long)(wal >> 20), rr.reads, syncs);
    assert_true(rr.reads > 0);
    if (wal < (48 << 20))
        fail_msg("only %lld MiB of WAL written in 120 s", (long long)(wal >> 20));
    assert_true(syncs >= 2);
    char path[1100];
    struct stat sb;
    snprintf(path, sizeof(path), "%s-wal", c->url);
    assert_int_equal(stat(path, &sb), 0);
    print_message("the WAL file: %lld KiB at most\n", (long long)(sb.st_size >> 10));
    assert_true(sb.st_size <= (33 << 20));
    /* The WAL file never shrinks here: below 8,192 frames, the commit's own checkpoint (for a
     * checkpointer that fell that far behind, on a starved machine) cannot have run. */
    if (sb.st_size < 32 + 8192LL * (4096 + 24))
        assert_int_equal(mine, 0);
    else
        print_message("the checkpointer fell behind: %d syncs by the commit\n", mine);
}

/* How many threads of this process are called name (/proc/self/task/N/comm). */
static int threads_named(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[300], comm[32] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(comm, sizeof(comm), f))
            comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
        n += strcmp(comm, name) == 0;
    }
    closedir(d);
    return n;
}

/* The store's threads carry their names, for top -H and /proc/PID/task, and are gone at close. */
static void s_threads_named(struct ctx *c)
{
    assert_int_equal(threads_named("hl-commit"), 1);
    assert_int_equal(threads_named("hl-checkpoint"), 1);
    hl_store_close(c->st);
    c->st = NULL;
    assert_int_equal(threads_named("hl-commit"), 0);
    assert_int_equal(threads_named("hl-checkpoint"), 0);
}

/* ---- deferred fan-out (store/defer.c) ---- */

/* Runs SQL on the store's file beside it. */
static void raw_exec(struct ctx *c, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(c->url, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    assert_int_equal(rc, SQLITE_OK);
}

/* A defer step with `after`, from *cursor; returns what it did. */
static struct hl_defer_result defer_step(struct ctx *c, int64_t after, int enter, int64_t *cursor)
{
    struct hl_defer_result r;
    assert_int_equal(hl_store_defer_step(c->st, hl_now_ms(), after, enter, cursor, &r), HL_OK);
    return r;
}

/* Its stats, where owed deliveries count as pending but are not listed (expect_counts). */
static struct hl_webhook_stats stats_of(struct ctx *c, const struct hook *h)
{
    struct hl_webhook_stats st;
    assert_int_equal(hl_store_webhook_stats(c->st, h->id, &st), HL_OK);
    return st;
}

/* Its deliveries owed, as its JSON's `deferred` shows them. */
static int64_t deferred_of(struct ctx *c, int64_t app_id, const struct hook *h)
{
    struct hl_webhook w;
    get_hook(c, app_id, h, &w);
    int64_t n = w.deferred;
    hl_webhook_clear(&w);
    return n;
}

/* Claims every due job of this case and records each a success; returns how many, their events'
 * uids in claim order in uids (at most 16). */
static size_t deliver_all(struct ctx *c, char (*uids)[HL_ID_MAX])
{
    struct jobs j = {0};
    int64_t now = hl_now_ms();
    claim_mine(c, now, now + HOUR, NULL, 0, &j);
    assert_true(j.n <= 16);
    for (size_t k = 0; k < j.n; k++) {
        snprintf(uids[k], HL_ID_MAX, "%s", j.v[k].event_uid);
        record_one(c, j.v[k].delivery_id, j.v[k].webhook_id, HL_OUT_SUCCESS);
    }
    size_t n = j.n;
    jobs_free(&j);
    return n;
}

/* A webhook with more than `after` waiting for a first attempt defers at the next step: later
 * events are owed, counted as pending, in `deferred` and in the gauges, not made; as its queue
 * drains they are made, oldest first, a queue's room at a time, one owed below the others
 * (an event id used again) first of all; with nothing owed it stops deferring and events are
 * deliveries again. */
static void s_defer(struct ctx *c)
{
    struct hl_app a;
    struct hook h;
    struct ev v[9];
    int64_t cursor = 0;
    char got[16][HL_ID_MAX];
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    for (int i = 0; i < 5; i++)
        assert_int_equal(publish(c, a.id, HL_EV_AGENT_UPDATED, &v[i]), 1);
    struct hl_defer_result r = defer_step(c, 5, 1, &cursor);
    assert_int_equal(r.entered, 0); /* 5 queued: not more than 5 */
    r = defer_step(c, 4, 1, &cursor);
    assert_int_equal(r.entered, 1);
    assert_true(r.more);
    assert_int_equal(r.made, 0); /* nothing owed yet, and its queue is long */
    for (int i = 5; i < 9; i++)
        assert_int_equal(publish(c, a.id, HL_EV_AGENT_UPDATED, &v[i]), 0);
    assert_int_equal(deferred_of(c, a.id, &h), 4);
    expect_stats(stats_of(c, &h), 9, 0, 0, 0);
    struct hl_store_gauges g;
    assert_int_equal(hl_store_gauges(c->st, &g), HL_OK);
    assert_int_equal(g.deliveries[HL_QS_PENDING], 5);
    assert_int_equal(g.deliveries[HL_QS_DEFERRED], 4);

    /* Its queue still long: nothing made. Then drained: two made at a time (after / 2 is its
     * room), the oldest first, even one owed below the rows already owed (an event id used
     * again, as SQLite does once the newest events are pruned: here an old event owed anew). */
    r = defer_step(c, 4, 0, &cursor);
    assert_int_equal(r.made, 0);
    assert_int_equal(deliver_all(c, got), 5);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "INSERT INTO owed(event_id, webhook_id) SELECT id, %lld FROM events WHERE uid = '%s'",
             (long long)h.id, v[0].e.uid);
    raw_exec(c, sql);
    assert_int_equal(deferred_of(c, a.id, &h), 5);
    r = defer_step(c, 4, 0, &cursor);
    assert_int_equal(r.made, 2);
    assert_int_equal(r.left, 0);
    assert_int_equal(deferred_of(c, a.id, &h), 3);
    expect_stats(stats_of(c, &h), 5, 0, 5, 0);
    const struct ev *order[] = {&v[0], &v[5], &v[6], &v[7], &v[8]};
    for (int k = 0; k < 4; k += 2) {
        assert_int_equal(deliver_all(c, got), 2);
        assert_string_equal(got[0], order[k]->e.uid);
        assert_string_equal(got[1], order[k + 1]->e.uid);
        r = defer_step(c, 4, 0, &cursor);
        assert_int_equal(r.made, k == 0 ? 2 : 1);
    }
    /* the last one made, and fewer than after / 2 wait: it stops deferring in the same step */
    assert_int_equal(r.left, 1);
    assert_false(r.more);
    assert_int_equal(deliver_all(c, got), 1);
    assert_string_equal(got[0], order[4]->e.uid);
    assert_int_equal(deferred_of(c, a.id, &h), 0);
    struct ev w;
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_UPDATED, &w), 1);
    expect_stats(expect_counts(c, a.id, h.id), 1, 0, 10, 0);
}

/* A step's work is bounded (it holds the one writer): the owed rows of two webhooks beyond one
 * step's budget are made over several steps, the second webhook's turn coming on where the last
 * step stopped; a deleted webhook's owed rows are dropped and it stops deferring. With deferral
 * turned off (after 0) steps make everything owed, whatever is queued. */
static void s_defer_bounded(struct ctx *c)
{
    struct hl_app a;
    struct hook h[3];
    struct ev v;
    int64_t cursor = 0;
    make_app(c, &a);
    for (int i = 0; i < 3; i++)
        make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h[i]);
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_UPDATED, &v), 3);
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_UPDATED, &v), 3);
    assert_int_equal(defer_step(c, 1, 1, &cursor).entered, 3);
    for (int i = 0; i < 400; i++)
        assert_int_equal(publish(c, a.id, HL_EV_AGENT_UPDATED, &v), 0);
    /* Queues of 2, room for none at after 1 (room: after / 2 at least 1, less the queue). */
    assert_int_equal(defer_step(c, 1, 0, &cursor).made, 0);
    assert_int_equal(hl_store_webhook_delete(c->st, a.id, h[2].uid, hl_now_ms()), HL_OK);
    cursor = 0;
    int64_t made = 0, dropped = 0, steps = 0;
    struct hl_defer_result r;
    do {
        r = defer_step(c, 0, 1, &cursor);
        assert_int_equal(r.entered, 0);
        assert_true(r.made + r.dropped <= 500);
        assert_int_equal(r.full, r.made + r.dropped == 500);
        made += r.made;
        dropped += r.dropped;
        steps++;
    } while (r.more && steps < 10);
    assert_int_equal(made, 800);
    assert_int_equal(dropped, 400);
    assert_true(steps >= 3);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(deferred_of(c, a.id, &h[i]), 0);
        expect_stats(expect_counts(c, a.id, h[i].id), 402, 0, 0, 0);
    }
}

/* Cases for the SQLite backend alone. */
static const struct contract sqlite_only[] = {
    {"group_commit_disk_full", s_batch_disk_full},
    {"group_commit_io_error", s_batch_io_error},
    {"sync_restore_fails", s_sync_restore_fails},
    {"release_space", s_release_space},
    {"compact_old_file", s_compact_old_file},
    {"compact_large", s_compact_large},
    {"stored_payloads", s_stored_payloads},
    {"commit_claim", s_commit_claim},
    {"checkpoint_apart", s_checkpoint_apart},
    {"threads_named", s_threads_named},
    {"close_sync_lost", s_close_sync_lost},
    {"defer", s_defer},
    {"defer_bounded", s_defer_bounded},
};

/* ---- running the contract on each backend ---- */

static const struct contract contract[] = {
    {"apps", c_apps},
    {"keys", c_keys},
    {"webhook_create_get", c_webhook_create_get},
    {"webhook_list", c_webhook_list},
    {"webhook_update", c_webhook_update},
    {"webhook_pause_resume", c_pause_resume},
    {"webhook_delete", c_webhook_delete},
    {"rotate_secret", c_rotate_secret},
    {"failing_recover", c_failing_recover},
    {"counters", c_counters},
    {"counters_concurrent", c_counters_concurrent},
    {"counters_sessions", c_counters_sessions},
    {"counters_move", c_counters_move},
    {"resources", c_resources},
    {"fanout", c_fanout},
    {"version_conflict", c_version_conflict},
    {"update_gone_is_not_found", c_update_gone},
    {"commit_atomic", c_commit_atomic},
    {"concurrent_commits", c_concurrent_commits},
    {"idempotency", c_idempotency},
    {"event_list", c_event_list},
    {"claim", c_claim},
    {"claim_fresh", c_claim_fresh},
    {"claim_fresh_one_hook", c_claim_fresh_one_hook},
    {"claim_fresh_filtered", c_claim_fresh_filtered},
    {"claim_fresh_late", c_claim_fresh_late},
    {"claim_fresh_retry", c_claim_fresh_retry},
    {"claim_shares", c_claim_shares},
    {"webhook_limit", c_webhook_limit},
    {"app_storage", c_app_storage},
    {"record", c_record},
    {"record_batch", c_record_batch},
    {"auto_disable", c_auto_disable},
    {"operational", c_operational},
    {"breaker", c_breaker},
    {"ordering", c_ordering},
    {"filtered_ordered", c_filtered_ordered},
    {"breaker_ordering", c_breaker_ordering},
    {"breaker_resend_leased", c_breaker_resend_leased},
    {"next_due", c_next_due},
    {"release_leases", c_release_leases},
    {"ingest_claim", c_ingest_claim},
    {"persistence", c_persistence},
    {"wake", c_wake},
    {"console_key", c_console_key},
    {"portal_use", c_portal_use},
    {"session_end", c_session_end},
    {"key_find", c_key_find},
    {"delivery_lists", c_delivery_lists},
    {"series", c_series},
    {"prune", c_prune},
    {"prune_args", c_prune_args},
    {"idem_expire", c_idem_expire},
    {"response_keep", c_response_keep},
    {"space", c_space},
    {"pruner", c_pruner},
    {"pruner_revisits", c_pruner_revisits},
    {"prune_pace", c_prune_pace},
};
#define NCONTRACT (sizeof(contract) / sizeof(contract[0]))

struct prestate {
    const struct backend *be;
    const struct contract *t;
};

static int setup(void **state)
{
    const struct prestate *ps = *state;
    struct ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    c->be = ps->be;
    c->t = ps->t;
    c->be->url(c->url, sizeof(c->url));
    char err[256] = "";
    int rc = hl_store_open(c->url, &c->st, err, sizeof(err));
    if (rc == HL_EUNAVAIL) {
        /* a backend not built, or a server not reachable: run_case skips (fails under
         * HL_REQUIRE_ALL) */
        snprintf(c->unavailable, sizeof(c->unavailable), "the %s store (%s)", c->be->name, err);
        c->st = NULL;
    } else if (rc) {
        print_error("cannot open %s: %s (%s)\n", c->url, err, hl_strerror(rc));
        free(c);
        return -1;
    }
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    hl_store_close(c->st);
    free(c);
    return 0;
}

static void run_case(void **state)
{
    struct ctx *c = *state;
    hl_test_need(c->st != NULL, c->unavailable);
    c->t->fn(c);
}

#define NSQLITE_ONLY (sizeof(sqlite_only) / sizeof(sqlite_only[0]))
#define NCASES (NCONTRACT + NSQLITE_ONLY)

/* The contract, and for SQLite its own cases too. */
static int run_backend(const struct backend *be)
{
    struct CMUnitTest tests[NCASES];
    struct prestate ps[NCASES];
    char names[NCASES][64];
    size_t n = be == &SQLITE ? NCASES : NCONTRACT;
    for (size_t i = 0; i < n; i++) {
        const struct contract *t = i < NCONTRACT ? &contract[i] : &sqlite_only[i - NCONTRACT];
        ps[i] = (struct prestate){be, t};
        snprintf(names[i], sizeof(names[i]), "%s/%s", be->name, t->name);
        tests[i] = (struct CMUnitTest){names[i], run_case, setup, teardown, &ps[i]};
    }
    return _cmocka_run_group_tests(be->name, tests, n, NULL, NULL);
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
    }
    rmdir(tmpdir);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/hookline-store-test-XXXXXX",
             base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    faulty_vfs_register();
    const char *only = getenv("HOOKLINE_TEST_BACKEND");
    int pg_only = only && strcmp(only, "postgres") == 0;
    const char *pg = getenv("HOOKLINE_TEST_PG_URL");
    int failed = 0;
    if (!pg_only)
        failed += run_backend(&SQLITE);
    if (pg && *pg) {
        failed += run_backend(&POSTGRES);
    } else if (pg_only) {
        fprintf(stderr, "missing: HOOKLINE_TEST_PG_URL (run under scripts/with-postgres.sh)\n");
        if (hl_test_require_all())
            failed++;
        hl_test_missing++;
    }
    remove_tmpdir();
    return hl_test_exit(failed);
}
