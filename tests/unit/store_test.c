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
#include <sys/syscall.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/events.h"
#include "common/ids.h"
#include "store/store.h"
#include "need.h"

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
    assert_int_equal(hl_store_webhook_create(c->st, &w), HL_OK);
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
    size_t n;
};

static void jobs_free(struct jobs *j)
{
    for (size_t i = 0; i < j->n; i++)
        hl_job_clear(&j->v[i]);
    free(j->v);
    j->v = NULL;
    j->n = 0;
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

/* Claims at now (batch by batch, each leased until lease_until, through the cursor fresh when not
 * NULL) until a claim returns none, and keeps the jobs of this case's webhooks in *out (which it
 * frees first), in the order they came. */
static void claim_with(struct ctx *c, int64_t now, int64_t lease_until, const int64_t *skip,
                       size_t nskip, struct hl_claim_cursor *fresh, struct jobs *out)
{
    assert_true(lease_until > now); /* or the same rows would come back forever */
    jobs_free(out);
    size_t cap = 0;
    /* a store that hands out leased rows again would keep this going: bound it */
    for (int round = 0;; round++) {
        if (round == 10000)
            fail_msg("claims keep returning rows: are leases kept?");
        struct hl_job *v = NULL;
        size_t n = 0;
        struct hl_claim cl = {now, lease_until, 64, skip, nskip, fresh};
        assert_int_equal(hl_store_claim(c->st, &cl, &v, &n), HL_OK);
        for (size_t i = 0; i < n; i++) {
            if (!is_mine(c, v[i].webhook_id)) {
                hl_job_clear(&v[i]);
                continue;
            }
            if (out->n == cap) {
                cap = cap ? 2 * cap : 8;
                out->v = realloc(out->v, cap * sizeof(*out->v));
                assert_non_null(out->v);
            }
            out->v[out->n++] = v[i];
        }
        free(v);
        if (n == 0)
            break;
    }
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
    assert_int_equal(hl_store_webhook_create(c->st, &w), HL_OK);
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
    assert_string_equal(got.prev_secret, "");
    assert_int_equal(got.prev_secret_until, 0);
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
    assert_int_equal(hl_store_webhook_create(c->st, &dup), HL_ECONFLICT);

    /* no description, inactive */
    struct hl_webhook w2 = w;
    new_uid("webhook-", w2.uid);
    w2.description = NULL;
    w2.active = 0;
    w2.event_types = 0;
    assert_int_equal(hl_store_webhook_create(c->st, &w2), HL_OK);
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
    {{0, NULL, NULL, 0, 0, 0}, URL0, "d0", HL_ENT_AGENT, 0, 1},
    /* bits not set are not applied, whatever the fields hold */
    {{0, URL2, "ignored", HL_ENT_ALL, AC, 0}, URL0, "d0", HL_ENT_AGENT, 0, 1},
    {{HL_WP_URL, URL1, NULL, 0, 0, 0}, URL1, "d0", HL_ENT_AGENT, 0, 1},
    {{HL_WP_DESCRIPTION, NULL, "d1", 0, 0, 0}, URL1, "d1", HL_ENT_AGENT, 0, 1},
    {{HL_WP_DESCRIPTION, NULL, NULL, 0, 0, 0}, URL1, NULL, HL_ENT_AGENT, 0, 1},
    {{HL_WP_ENTITIES, NULL, NULL, HL_ENT_ALL, 0, 0}, URL1, NULL, HL_ENT_ALL, 0, 1},
    {{HL_WP_EVENT_TYPES, NULL, NULL, 0, AC | FC, 0}, URL1, NULL, HL_ENT_ALL, AC | FC, 1},
    {{HL_WP_URL | HL_WP_ENTITIES | HL_WP_EVENT_TYPES, URL2, NULL, HL_ENT_CONTEXTFILE, FD, 0},
     URL2,
     NULL,
     HL_ENT_CONTEXTFILE,
     FD,
     1},
    {{HL_WP_ACTIVE, NULL, NULL, 0, 0, 0}, URL2, NULL, HL_ENT_CONTEXTFILE, FD, 0},
    {{HL_WP_ACTIVE | HL_WP_DESCRIPTION, NULL, "back", 0, 0, 1},
     URL2,
     "back",
     HL_ENT_CONTEXTFILE,
     FD,
     1},
    {{HL_WP_EVENT_TYPES, NULL, NULL, 0, 0, 0}, URL2, "back", HL_ENT_CONTEXTFILE, 0, 1},
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
    assert_int_equal(hl_store_webhook_create(c->st, &w), HL_OK);

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

/* A claim through a cursor (struct hl_claim.fresh), for what commits just made. SQLite: the first
 * claim through a zeroed cursor marks where "new" begins and claims none; then the deliveries made
 * since, in id order, leased like any claim; busy (skipped) and inactive webhooks' deliveries, and
 * those made before the mark, are left for the claim without a cursor. PostgreSQL: the same as a
 * claim without a cursor. Both: nothing leased is claimed twice. */
static void c_claim_fresh(struct ctx *c)
{
    int by_id = strcmp(c->be->name, "sqlite") == 0;
    struct hl_claim_cursor cur = {0};
    struct hl_app a;
    struct hook w1, w2;
    struct ev e0, e1, e2;
    struct jobs j = {0};
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &w1);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &w2);
    /* made before the cursor's first claim: new only where a cursor claim is the plain claim */
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &e0), 2);
    int64_t now = hl_now_ms();
    claim_with(c, now, now + HOUR, NULL, 0, &cur, &j);
    assert_int_equal(j.n, by_id ? 0 : 2);
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &e1), 2);
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_UPDATED, &e2), 2);
    now = hl_now_ms();

    /* w1 busy: only w2's two (oldest first where the claim goes by id) */
    int64_t busy[] = {w1.id};
    claim_with(c, now, now + HOUR, busy, 1, &cur, &j);
    assert_int_equal(j.n, 2);
    for (size_t i = 0; i < j.n; i++) {
        assert_int_equal(j.v[i].webhook_id, w2.id);
        if (by_id)
            assert_string_equal(j.v[i].event_uid, i ? e2.e.uid : e1.e.uid);
    }
    if (by_id)
        assert_true(j.v[0].delivery_id < j.v[1].delivery_id);
    /* asked again: nothing (w2's are leased; by id, w1's are behind the cursor now) */
    claim_with(c, now, now + HOUR, by_id ? NULL : busy, by_id ? 0 : 1, &cur, &j);
    assert_int_equal(j.n, 0);
    /* w1's were left behind for the walk over webhooks (and e0's two, by id) */
    claim_mine(c, now, now + HOUR, NULL, 0, &j);
    assert_int_equal(j.n, by_id ? 4 : 2);
    size_t of_w1 = 0;
    for (size_t i = 0; i < j.n; i++)
        of_w1 += j.v[i].webhook_id == w1.id;
    assert_int_equal(of_w1, by_id ? 3 : 2);

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
            struct hl_claim cl = {now, now + HOUR, 1, NULL, 0, &cur};
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
        assert_string_equal(x->prev_secret, "");
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
            struct hl_claim cl = {t, t + MIN, 1, NULL, 0, NULL};
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
    {"retry", HL_OUT_RETRY, 503, "HTTP 503", HL_DS_PENDING, 0},
    {"failed", HL_OUT_FAILED, 500, "HTTP 500", HL_DS_FAILED, 0},
    {"timeout, no answer", HL_OUT_RETRY, 0, "timed out after 5 s", HL_DS_PENDING, 0},
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
    expect_delivery(c, a.id, at[0].delivery_id, HL_DS_PENDING, 1);
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

    hl_store_close(c->st);
    c->st = NULL;
    char err[256] = "";
    int rc = hl_store_open(c->url, &c->st, err, sizeof(err));
    if (rc)
        fail_msg("reopen %s: %s", c->url, err);

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
 * flight), or a PRAGMA synchronous = FULL that is refused. */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stall_sync; /* the next xSync blocks until this is cleared */
    int stalled;    /* an xSync is blocked */
    int write_err;  /* xWrite on a WAL file fails with this code (0: no fault) */
    int sync_err;   /* xSync fails with this code */
    int pragma_err; /* PRAGMA synchronous = FULL fails */
    int hits;       /* faults injected */
} F = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, 0};

struct ffile {
    sqlite3_file base;
    sqlite3_file *real; /* the wrapped file, right after this struct */
    int wal;
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
    int rc = ((struct ffile *)f)->wal ? fault_take(&F.write_err) : 0;
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

/* Whether a committer's change is in the store: all of it (1), none of it (0); fails on half. */
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

    for (int reopen = 0; reopen < 2; reopen++) {
        assert_int_equal(stored(c, &k[0]), 1);
        for (int i = 1; i <= FOLLOWERS; i++)
            assert_int_equal(stored(c, &k[i]), 0);
        if (reopen)
            break;
        /* the store works on: a commit after the failure is kept */
        commit_one(&k[FOLLOWERS + 1]);
        assert_int_equal(k[FOLLOWERS + 1].rc, HL_OK);
        hl_store_close(c->st);
        c->st = NULL;
        char err[256] = "";
        if (hl_store_open(c->url, &c->st, err, sizeof(err)))
            fail_msg("reopen %s: %s", c->url, err);
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

/* A claim leases with synchronous off; when it cannot be turned back on, the claim fails and the
 * writer refuses every write (nothing commits without fsync) until it can. */
static void s_sync_restore_fails(struct ctx *c)
{
    struct hl_app a;
    struct hook h;
    struct ev v;
    make_app(c, &a);
    make_hook(c, a.id, HL_ENT_ALL, 0, 1, &h);
    assert_int_equal(publish(c, a.id, HL_EV_AGENT_CREATED, &v), 1);
    int64_t now = hl_now_ms();
    struct hl_job *jobs = NULL;
    size_t n = 0;
    struct hl_claim cl = {now, now + MIN, 64, NULL, 0, NULL};

    fault_arm(&F.pragma_err, 1);
    assert_int_equal(hl_store_claim(c->st, &cl, &jobs, &n), HL_ESTORE);
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
    /* past t2's expiry it is forgotten (a link that old is refused as expired anyway); t1 is
     * still remembered */
    assert_int_equal(hl_store_portal_use(c->st, t1, now + HOUR, now + 2 * SEC), HL_ECONFLICT);
    assert_int_equal(hl_store_portal_use(c->st, t2, now + 3 * SEC, now + 2 * SEC), HL_OK);
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
    struct hl_delivery_filter failing = {.status = HL_DS_PENDING, .failing = 1, .type = -1};
    for (int64_t wid = 0; wid <= h1.id; wid += h1.id) {
        n = page_all(c, a.id, wid, &failing, 2, got, 4 * N);
        assert_int_equal(n, 1);
        assert_int_equal(got[0], d1[2]);
    }
    struct hl_delivery_filter pending = {.status = HL_DS_PENDING, .type = -1};
    assert_int_equal(page_all(c, a.id, h1.id, &pending, 2, got, 4 * N), N - 3);
    assert_int_equal(page_all(c, a.id, h2.id, &pending, 2, got, 4 * N), N);
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
    /* recover counts what it would queue, then queues that many */
    int64_t count = -1, queued = -1;
    assert_int_equal(hl_store_recover_count(c->st, h1.id, now - HOUR, 0, &count), HL_OK);
    assert_int_equal(count, 1);
    assert_int_equal(hl_store_recover_count(c->st, h1.id, now + HOUR, 0, &count), HL_OK);
    assert_int_equal(count, 0);
    assert_int_equal(hl_store_recover(c->st, h1.id, now - HOUR, 0, now, &queued), HL_OK);
    assert_int_equal(queued, 1);
    assert_int_equal(hl_store_recover_count(c->st, h1.id, now - HOUR, 0, &count), HL_OK);
    assert_int_equal(count, 0);
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

/* Cases for the SQLite backend alone. */
static const struct contract sqlite_only[] = {
    {"group_commit_disk_full", s_batch_disk_full},
    {"group_commit_io_error", s_batch_io_error},
    {"sync_restore_fails", s_sync_restore_fails},
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
    {"record", c_record},
    {"record_batch", c_record_batch},
    {"auto_disable", c_auto_disable},
    {"next_due", c_next_due},
    {"release_leases", c_release_leases},
    {"persistence", c_persistence},
    {"wake", c_wake},
    {"console_key", c_console_key},
    {"portal_use", c_portal_use},
    {"key_find", c_key_find},
    {"delivery_lists", c_delivery_lists},
    {"series", c_series},
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
