/* The store operations (store.h) that are the same on SQLite and PostgreSQL, written once over a
 * backend's sessions (struct hl_backend in sql.h); each backend's SQL text answers the queries
 * named here. The operations that differ go straight to the backend. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/filter.h"
#include "common/json.h"
#include "store/sql.h"

/* ---- helpers ---- */

static int run(struct hl_sess *s, int q, const struct hl_arg *a, size_t n, struct hl_rows *rows)
{
    return s->st->be->run(s, q, a, n, rows);
}

int hl_sql_once(struct hl_store *st, enum hl_sess_kind kind, int q, const struct hl_arg *a,
                size_t n, struct hl_rows *rows)
{
    struct hl_sess s;
    int rc = st->be->open(st, kind, &s);
    if (rc == HL_OK)
        rc = st->be->close(&s, run(&s, q, a, n, rows));
    if (rc && rows)
        hl_rows_clear(rows);
    return rc;
}

/* Reads the first row of q into out: HL_ENOTFOUND when there is none. */
static int get(struct hl_store *st, enum hl_sess_kind kind, int q, const struct hl_arg *a, size_t n,
               const struct hl_reader *rd, void *out)
{
    struct hl_rows rows = {.rd = rd, .one = out};
    int rc = hl_sql_once(st, kind, q, a, n, &rows);
    return rc == HL_OK && rows.n == 0 ? HL_ENOTFOUND : rc;
}

/* Reads every row of q into one malloc'd array (*out may be NULL when there are none). */
static int list(struct hl_store *st, int q, const struct hl_arg *a, size_t n,
                const struct hl_reader *rd, void **out, size_t *len)
{
    struct hl_rows rows = {.rd = rd};
    int rc = hl_sql_once(st, HL_SESS_READ, q, a, n, &rows);
    if (rc == HL_OK) {
        *out = rows.arr;
        *len = rows.n;
    }
    return rc;
}

/* Runs a write that must change a row: HL_ENOTFOUND when it changed none. */
static int change_one(struct hl_store *st, int q, const struct hl_arg *a, size_t n)
{
    struct hl_rows rows = {0};
    int rc = hl_sql_once(st, HL_SESS_WRITE, q, a, n, &rows);
    return rc == HL_OK && rows.changed == 0 ? HL_ENOTFOUND : rc;
}

/* Inserts a row and returns its new id (the statement ends in RETURNING id). */
static int insert(struct hl_store *st, int q, const struct hl_arg *a, size_t n, int64_t *id)
{
    return get(st, HL_SESS_WRITE, q, a, n, &hl_read_int, id);
}

/* In a transaction: wakes the other nodes' dispatchers at commit, where a backend needs it. */
static int wake_all(struct hl_sess *s)
{
    return s->st->be->wake_all ? s->st->be->wake_all(s) : HL_OK;
}

/* ---- apps and keys ---- */

int hl_store_app_create(struct hl_store *st, const char *uid, const char *name, struct hl_app *out)
{
    int64_t now = hl_now_ms(), id = 0;
    struct hl_arg a[] = {hl_arg_text(uid), hl_arg_text(name), hl_arg_int(now)};
    int rc = insert(st, HL_Q_APP_INSERT, a, HL_NARGS(a), &id);
    if (rc == HL_OK && out) {
        memset(out, 0, sizeof(*out));
        out->id = id;
        snprintf(out->uid, sizeof(out->uid), "%s", uid);
        snprintf(out->name, sizeof(out->name), "%s", name);
        out->created_at = now;
    }
    return rc;
}

int hl_store_app_get(struct hl_store *st, const char *uid, struct hl_app *out)
{
    struct hl_arg a[] = {hl_arg_text(uid)};
    return get(st, HL_SESS_READ, HL_Q_APP_GET, a, HL_NARGS(a), &hl_read_app, out);
}

int hl_store_app_list(struct hl_store *st, struct hl_app **out, size_t *n)
{
    return list(st, HL_Q_APP_LIST, NULL, 0, &hl_read_app, (void **)out, n);
}

int hl_store_key_create(struct hl_store *st, int64_t app_id, const char *uid,
                        const uint8_t hash[32], const char *prefix)
{
    struct hl_arg a[] = {hl_arg_text(uid), hl_arg_int(app_id), hl_arg_blob(hash, 32),
                         hl_arg_text(prefix), hl_arg_int(hl_now_ms())};
    return hl_sql_once(st, HL_SESS_WRITE, HL_Q_KEY_INSERT, a, HL_NARGS(a), NULL);
}

int hl_store_key_find(struct hl_store *st, const uint8_t hash[32], struct hl_app *app,
                      char *key_uid)
{
    struct hl_key_hit hit;
    struct hl_arg a[] = {hl_arg_blob(hash, 32)};
    int rc = get(st, HL_SESS_READ, HL_Q_KEY_LOOKUP, a, HL_NARGS(a), &hl_read_key_hit, &hit);
    /* The index found the row; the final word is a constant-time comparison. */
    if (rc == HL_OK && !(hit.hash_ok && CRYPTO_memcmp(hit.hash, hash, 32) == 0))
        rc = HL_ENOTFOUND;
    if (rc == HL_OK) {
        *app = hit.app;
        if (key_uid)
            memcpy(key_uid, hit.key_uid, HL_ID_MAX);
    }
    return rc;
}

int hl_store_key_lookup(struct hl_store *st, const uint8_t hash[32], struct hl_app *app)
{
    return hl_store_key_find(st, hash, app, NULL);
}

int hl_store_key_app(struct hl_store *st, const char *key_uid, struct hl_app *app)
{
    struct hl_arg a[] = {hl_arg_text(key_uid)};
    return get(st, HL_SESS_READ, HL_Q_KEY_APP, a, HL_NARGS(a), &hl_read_app, app);
}

int hl_store_key_revoke(struct hl_store *st, const char *uid)
{
    struct hl_arg a[] = {hl_arg_text(uid), hl_arg_int(hl_now_ms())};
    return change_one(st, HL_Q_KEY_REVOKE, a, HL_NARGS(a));
}

int hl_store_key_list(struct hl_store *st, int64_t app_id, struct hl_api_key **out, size_t *n)
{
    struct hl_arg a[] = {hl_arg_int(app_id)};
    return list(st, HL_Q_KEY_LIST, a, HL_NARGS(a), &hl_read_key, (void **)out, n);
}

/* ---- webhooks ---- */

/* In a transaction: sets a webhook's delivery policy (issue 19), kept apart from the fields
 * every webhook has. */
static int webhook_policy(struct hl_sess *s, int64_t id, int rate_limit, int ordering)
{
    struct hl_arg a[] = {hl_arg_int(id), hl_arg_int(rate_limit), hl_arg_int(ordering)};
    return run(s, HL_Q_WH_POLICY, a, HL_NARGS(a), NULL);
}

int hl_store_webhook_create(struct hl_store *st, struct hl_webhook *w, int64_t max_per_app)
{
    struct hl_arg a[] = {
        hl_arg_text(w->uid),           hl_arg_int(w->app_id),   hl_arg_text(w->url),
        hl_arg_text(w->description),   hl_arg_int(w->entities), hl_arg_int(w->event_types),
        hl_arg_int(w->active ? 1 : 0), hl_arg_text(w->secret),  hl_arg_int(w->created_at),
        hl_arg_text(w->filter),        hl_arg_text(w->headers)};
    /* Alerting (issue 21): the kind and silence settings, with the insert; so are rateLimit and
     * ordering (issue 19). */
    int alerting = w->kind || w->silence_ms || w->expect_events;
    int policy = w->rate_limit != 0 || w->ordering != HL_ORDER_NONE;
    if (max_per_app <= 0 && !alerting && !policy)
        return insert(st, HL_Q_WH_INSERT, a, HL_NARGS(a), &w->id);
    /* The app's row is locked before counting: two creates for one app count one after the
     * other (on PostgreSQL the count is a statement of its own, so it sees the other's
     * commit). */
    struct hl_sess s;
    int rc = st->be->open(st, HL_SESS_TX, &s);
    if (rc)
        return rc;
    struct hl_arg app[] = {hl_arg_int(w->app_id)};
    int64_t count = 0;
    struct hl_rows locked = {0}, counted = {.rd = &hl_read_int, .one = &count};
    struct hl_rows id = {.rd = &hl_read_int, .one = &w->id};
    if (max_per_app > 0) {
        rc = run(&s, HL_Q_APP_LOCK, app, HL_NARGS(app), &locked);
        if (rc == HL_OK && locked.n == 0)
            rc = HL_ENOTFOUND;
        if (rc == HL_OK)
            rc = run(&s, HL_Q_WH_COUNT, app, HL_NARGS(app), &counted);
        if (rc == HL_OK && count >= max_per_app)
            rc = HL_ETOOBIG;
    }
    if (rc == HL_OK)
        rc = run(&s, HL_Q_WH_INSERT, a, HL_NARGS(a), &id);
    if (rc == HL_OK && id.n == 0)
        rc = HL_ESTORE;
    if (rc == HL_OK && alerting) {
        struct hl_arg b[] = {hl_arg_int(w->id), hl_arg_int(w->kind), hl_arg_int(w->silence_ms),
                             hl_arg_int(w->expect_events)};
        rc = run(&s, HL_Q_WH_ALERTING, b, HL_NARGS(b), NULL);
    }
    if (rc == HL_OK && policy)
        rc = webhook_policy(&s, w->id, w->rate_limit, w->ordering);
    return st->be->close(&s, rc);
}

int hl_store_webhook_get(struct hl_store *st, int64_t app_id, const char *uid,
                         struct hl_webhook *out)
{
    struct hl_arg a[] = {hl_arg_int(app_id), hl_arg_text(uid)};
    return get(st, HL_SESS_READ, HL_Q_WH_GET, a, HL_NARGS(a), &hl_read_webhook, out);
}

int hl_store_webhook_get_any(struct hl_store *st, int64_t app_id, const char *uid,
                             struct hl_webhook *out)
{
    struct hl_arg a[] = {hl_arg_int(app_id), hl_arg_text(uid)};
    return get(st, HL_SESS_READ, HL_Q_WH_GET_ANY, a, HL_NARGS(a), &hl_read_webhook, out);
}

int hl_store_webhook_list(struct hl_store *st, int64_t app_id, int64_t after_id, size_t limit,
                          struct hl_webhook **out, size_t *n)
{
    return hl_store_webhook_list_kind(st, app_id, HL_WK_ORDINARY, after_id, limit, out, n);
}

int hl_store_webhook_list_kind(struct hl_store *st, int64_t app_id, int kind, int64_t after_id,
                               size_t limit, struct hl_webhook **out, size_t *n)
{
    struct hl_arg a[] = {hl_arg_int(app_id), hl_arg_int(after_id), hl_arg_int((int64_t)limit),
                         hl_arg_int(kind)};
    return list(st, HL_Q_WH_LIST, a, HL_NARGS(a), &hl_read_webhook, (void **)out, n);
}

/* Reads one webhook inside a session (q: HL_Q_WH_GET or HL_Q_WH_GET_LOCKED). */
static int webhook_in(struct hl_sess *s, int q, int64_t app_id, const char *uid,
                      struct hl_webhook *out)
{
    struct hl_arg a[] = {hl_arg_int(app_id), hl_arg_text(uid)};
    struct hl_rows rows = {.rd = &hl_read_webhook, .one = out};
    int rc = run(s, q, a, HL_NARGS(a), &rows);
    if (rc)
        hl_rows_clear(&rows);
    return rc == HL_OK && rows.n == 0 ? HL_ENOTFOUND : rc;
}

/* The patched row; pausing parks pending deliveries, resuming releases them. */
static int webhook_patch(struct hl_sess *s, const struct hl_webhook *cur,
                         const struct hl_webhook_patch *p, int active, int64_t now)
{
    unsigned set = p->set;
    struct hl_arg a[] = {
        hl_arg_int(cur->app_id),
        hl_arg_text(cur->uid),
        hl_arg_text(set & HL_WP_URL ? p->url : cur->url),
        hl_arg_text(set & HL_WP_DESCRIPTION ? p->description : cur->description),
        hl_arg_int(set & HL_WP_ENTITIES ? p->entities : cur->entities),
        hl_arg_int(set & HL_WP_EVENT_TYPES ? p->event_types : cur->event_types),
        hl_arg_int(active ? 1 : 0),
        hl_arg_int(now),
        hl_arg_text(set & HL_WP_FILTER ? p->filter : cur->filter),
        hl_arg_text(set & HL_WP_HEADERS ? p->headers : cur->headers),
    };
    int rc = run(s, HL_Q_WH_UPDATE, a, HL_NARGS(a), NULL);
    if (rc == HL_OK && (set & (HL_WP_SILENCE | HL_WP_EXPECT_EVENTS))) {
        struct hl_arg b[] = {
            hl_arg_int(cur->id), hl_arg_int(cur->kind),
            hl_arg_int(set & HL_WP_SILENCE ? p->silence_ms : cur->silence_ms),
            hl_arg_int(set & HL_WP_EXPECT_EVENTS ? p->expect_events : cur->expect_events)};
        rc = run(s, HL_Q_WH_ALERTING, b, HL_NARGS(b), NULL);
    }
    if (rc == HL_OK && (set & (HL_WP_RATE_LIMIT | HL_WP_ORDERING)))
        rc = webhook_policy(s, cur->id, set & HL_WP_RATE_LIMIT ? p->rate_limit : cur->rate_limit,
                            set & HL_WP_ORDERING ? p->ordering : cur->ordering);
    if (rc || active == cur->active)
        return rc;
    if (!active)
        return hl_sql_park(s, cur->id);
    struct hl_arg b[] = {hl_arg_int(cur->id), hl_arg_int(now)};
    return run(s, HL_Q_WH_RESUME_DELIVERIES, b, HL_NARGS(b), NULL);
}

int hl_store_webhook_update(struct hl_store *st, int64_t app_id, const char *uid,
                            const struct hl_webhook_patch *p, int64_t now, struct hl_webhook *out)
{
    struct hl_webhook cur = {0}, got = {0};
    struct hl_sess s;
    int rc = st->be->open(st, HL_SESS_TX, &s);
    if (rc)
        return rc;
    /* Locked: a PATCH on another node waits, so active != cur.active is decided on fresh data. */
    rc = webhook_in(&s, HL_Q_WH_GET_LOCKED, app_id, uid, &cur);
    int active = p->set & HL_WP_ACTIVE ? p->active : cur.active;
    if (rc == HL_OK)
        rc = webhook_patch(&s, &cur, p, active, now);
    if (rc == HL_OK && active)
        rc = wake_all(&s);
    if (rc == HL_OK && out)
        rc = webhook_in(&s, HL_Q_WH_GET, app_id, uid, &got);
    rc = st->be->close(&s, rc);
    hl_webhook_clear(&cur);
    if (rc) {
        hl_webhook_clear(&got);
        return rc;
    }
    if (out)
        *out = got;
    if (active)
        hl_store_notify(st);
    return HL_OK;
}

int hl_store_webhook_delete(struct hl_store *st, int64_t app_id, const char *uid, int64_t now)
{
    struct hl_sess s;
    int rc = st->be->open(st, HL_SESS_TX, &s);
    if (rc)
        return rc;
    struct hl_arg a[] = {hl_arg_int(app_id), hl_arg_text(uid), hl_arg_int(now)};
    struct hl_rows rows = {0};
    rc = run(&s, HL_Q_WH_DELETE, a, HL_NARGS(a), &rows);
    if (rc == HL_OK && rows.changed == 0)
        rc = HL_ENOTFOUND;
    if (rc == HL_OK)
        rc = run(&s, HL_Q_WH_CANCEL_DELIVERIES, &a[1], 1, NULL);
    return st->be->close(&s, rc);
}

/* The earlier secrets after a rotation of cur: the replaced one until prev_until, then those of
 * cur still signing at now, newest first and at most HL_PREV_SECRETS_MAX; none when prev_until
 * <= now (a rotation without overlap is a clean cut). */
static void rotated(const struct hl_webhook *cur, int64_t prev_until, int64_t now,
                    struct hl_prev_secrets *out)
{
    memset(out, 0, sizeof(*out));
    if (prev_until <= now)
        return;
    out->v[0].until = prev_until;
    snprintf(out->v[0].secret, sizeof(out->v[0].secret), "%s", cur->secret);
    out->n = 1;
    for (int i = 0; i < cur->prev.n && out->n < HL_PREV_SECRETS_MAX; i++)
        if (cur->prev.v[i].until > now)
            out->v[out->n++] = cur->prev.v[i];
}

int hl_store_rotate_secret(struct hl_store *st, int64_t app_id, const char *uid, const char *secret,
                           int64_t prev_until, int64_t now)
{
    struct hl_webhook cur = {0};
    struct hl_sess s;
    int rc = st->be->open(st, HL_SESS_TX, &s);
    if (rc)
        return rc;
    /* Locked: two rotations at once, on any nodes, each keep the other's secret. */
    rc = webhook_in(&s, HL_Q_WH_GET_LOCKED, app_id, uid, &cur);
    if (rc == HL_OK) {
        struct hl_prev_secrets prev;
        char text[HL_PREV_SECRETS_TEXT_MAX];
        rotated(&cur, prev_until, now, &prev);
        int64_t latest = hl_prev_secrets_write(&prev, text);
        struct hl_arg a[] = {hl_arg_int(app_id), hl_arg_text(uid),   hl_arg_text(secret),
                             hl_arg_text(text),  hl_arg_int(latest), hl_arg_int(now)};
        struct hl_rows rows = {0};
        rc = run(&s, HL_Q_ROTATE, a, HL_NARGS(a), &rows);
        if (rc == HL_OK && rows.changed == 0)
            rc = HL_ENOTFOUND;
    }
    hl_webhook_clear(&cur);
    return st->be->close(&s, rc);
}

int hl_store_webhook_stats(struct hl_store *st, int64_t webhook_id, struct hl_webhook_stats *out)
{
    struct hl_arg a[] = {hl_arg_int(webhook_id)};
    return get(st, HL_SESS_READ, HL_Q_WH_STATS, a, HL_NARGS(a), &hl_read_wh_stats, out);
}

/* ---- resources, events, the outbox ---- */

int hl_store_resource_get(struct hl_store *st, int64_t app_id, enum hl_entity kind, const char *uid,
                          struct hl_resource *out)
{
    struct hl_arg a[] = {hl_arg_int(app_id), hl_arg_int(kind), hl_arg_text(uid)};
    return get(st, HL_SESS_READ, HL_Q_RES_GET, a, HL_NARGS(a), &hl_read_resource, out);
}

int hl_store_resource_list(struct hl_store *st, int64_t app_id, enum hl_entity kind,
                           const char *parent_uid, const char *tenant, int64_t after_id,
                           size_t limit, struct hl_resource **out, size_t *n)
{
    struct hl_arg a[] = {hl_arg_int(app_id),  hl_arg_int(kind),     hl_arg_text(parent_uid),
                         hl_arg_text(tenant), hl_arg_int(after_id), hl_arg_int((int64_t)limit)};
    int q = tenant ? HL_Q_RES_LIST_TENANT : HL_Q_RES_LIST;
    return list(st, q, a, HL_NARGS(a), &hl_read_resource, (void **)out, n);
}

/* The resource row of a change. An update or delete that changes no row is HL_ECONFLICT when
 * the resource is there at another version, HL_ENOTFOUND when it is gone (store.h). */
static int apply_resource(struct hl_sess *s, const struct hl_change *c)
{
    const struct hl_resource *r = c->res;
    if (c->op == HL_OP_CREATE) {
        struct hl_arg a[] = {hl_arg_text(r->uid),       hl_arg_int(r->app_id),
                             hl_arg_int(r->kind),       hl_arg_text(r->parent_uid),
                             hl_arg_text(r->tenant),    hl_arg_textn(r->body, r->body_len),
                             hl_arg_int(r->created_at), hl_arg_int(r->updated_at)};
        return run(s, HL_Q_RES_INSERT, a, HL_NARGS(a), NULL);
    }
    if (c->op != HL_OP_UPDATE && c->op != HL_OP_DELETE)
        return HL_OK;
    struct hl_arg a[] = {hl_arg_int(r->app_id),
                         hl_arg_text(r->uid),
                         hl_arg_int(c->expect_version),
                         hl_arg_text(r->tenant),
                         hl_arg_textn(r->body, r->body_len),
                         hl_arg_int(r->updated_at)};
    struct hl_rows rows = {0};
    int q = c->op == HL_OP_UPDATE ? HL_Q_RES_UPDATE : HL_Q_RES_DELETE;
    int rc = run(s, q, a, c->op == HL_OP_UPDATE ? 6 : 3, &rows);
    if (rc || rows.changed)
        return rc;
    rc = run(s, HL_Q_RES_EXISTS, a, 2, &rows);
    return rc ? rc : rows.n ? HL_ECONFLICT : HL_ENOTFOUND;
}

/* The ingestion side of a change: a new file's bytes queued, a finished job's passages stored, a
 * deleted file's rows gone. */
static int apply_file(struct hl_sess *s, const struct hl_change *c)
{
    const struct hl_resource *r = c->res;
    if (!r || r->kind != HL_ENT_CONTEXTFILE)
        return HL_OK;
    struct hl_arg uid[] = {hl_arg_text(r->uid)};
    /* A file's bytes come with its create, or later to a file registered without them. */
    if ((c->op == HL_OP_CREATE || c->op == HL_OP_UPDATE) && c->file) {
        struct hl_arg a[] = {uid[0],
                             hl_arg_int(r->app_id),
                             hl_arg_text(c->file->path),
                             hl_arg_int(c->file->size),
                             hl_arg_text(c->file->sha256),
                             hl_arg_int(r->created_at)};
        return run(s, HL_Q_FILE_INSERT, a, HL_NARGS(a), NULL);
    }
    if (c->op != HL_OP_DELETE && !c->done_file)
        return HL_OK;
    int rc = run(s, HL_Q_CHUNKS_DELETE, uid, 1, NULL);
    if (rc || c->op == HL_OP_DELETE)
        return rc ? rc : run(s, HL_Q_FILE_DELETE, uid, 1, NULL);
    for (size_t i = 0; i < c->nchunks && rc == HL_OK; i++) {
        const struct hl_text_chunk *k = &c->chunks[i];
        struct hl_arg a[] = {uid[0], hl_arg_int(k->index), hl_arg_int(k->offset),
                             hl_arg_textn(k->text, k->len)};
        rc = run(s, HL_Q_CHUNK_INSERT, a, HL_NARGS(a), NULL);
    }
    return rc ? rc : run(s, HL_Q_FILE_DONE, uid, 1, NULL);
}

/* The Idempotency-Key's answer, unless another request took the key within the window. */
static int put_idem(struct hl_sess *s, const struct hl_change *first, const struct hl_idem *idem)
{
    int64_t now = hl_now_ms();
    struct hl_arg a[] = {hl_arg_int(first->ev ? first->ev->app_id : first->res->app_id),
                         hl_arg_text(idem->key),
                         hl_arg_blob(idem->request_hash, 32),
                         hl_arg_int(idem->status),
                         hl_arg_text(idem->response),
                         hl_arg_int(now),
                         hl_arg_int(now - HL_IDEM_WINDOW_MS)};
    struct hl_rows rows = {0};
    int rc = run(s, HL_Q_IDEM_INSERT, a, HL_NARGS(a), &rows);
    return rc == HL_OK && rows.changed == 0 ? HL_ECONFLICT : rc;
}

/* ---- delivery policy (issue 19): filtered fan-out ---- */

/* The parsed envelope of e, whose payload may be packed for storage already. An envelope that
 * does not parse (never expected: hookline wrote it) matches no filter: *env stays NULL. */
static int envelope_of(const struct hl_event *e, json_t **env)
{
    char *text = NULL;
    size_t len = 0;
    if (!hl_payload_packed(e->payload, e->payload_len)) {
        *env = hl_json_parse(e->payload, e->payload_len, NULL, 0);
        return HL_OK;
    }
    int rc = hl_payload_unpack(e->payload, e->payload_len, &text, &len);
    if (rc == HL_OK)
        *env = hl_json_parse(text, len, NULL, 0);
    free(text);
    return rc;
}

/* The deliveries of event ev_id (of change ch) to the webhooks whose filter it matches, in the
 * event's transaction: the filters as of the statements' snapshot decide. On SQLite (one writer)
 * that is every PATCH committed before the event; on PostgreSQL every PATCH committed before the
 * event's fan-out statement began (a PATCH racing a change may commit between that statement and
 * the change's commit: locking every candidate webhook row per event to close that window would
 * cost the hot path far more than it buys). Adds them to *made and wakes every node when it made
 * any. */
static int fan_out_filtered(struct hl_sess *s, const struct hl_change *ch, int64_t ev_id,
                            int64_t *made)
{
    const struct hl_event *e = ch->ev;
    struct hl_arg a[] = {hl_arg_int(e->app_id), hl_arg_int(hl_event_entity(e->type)),
                         hl_arg_int((int64_t)1 << e->type)};
    struct hl_rows rows = {.rd = &hl_read_filter};
    int rc = run(s, HL_Q_WH_FILTERED, a, HL_NARGS(a), &rows);
    json_t *env = NULL;
    if (rc == HL_OK && rows.n)
        rc = envelope_of(e, &env);
    int64_t added = 0, now = hl_now_ms();
    for (size_t i = 0; rc == HL_OK && env && i < rows.n; i++) {
        const struct hl_wh_filter *w = &((const struct hl_wh_filter *)rows.arr)[i];
        json_t *f = hl_json_parse(w->filter, w->len, NULL, 0);
        /* A stored filter was checked when it was set; one that no longer parses delivers
         * nothing rather than everything. */
        int want = f && json_is_object(f) && hl_filter_match(f, env);
        json_decref(f);
        if (!want)
            continue;
        /* the resource orders it when the webhook has ordering (HL_Q_DELIV_INSERT) */
        struct hl_arg b[] = {hl_arg_int(ev_id), hl_arg_int(w->id), hl_arg_int(now),
                             hl_arg_text(e->resource_uid), hl_arg_int(e->type)};
        struct hl_rows ins = {0};
        if (w->deferring) { /* owed, not a delivery (store/defer.c) */
            rc = run(s, HL_Q_OWE_INSERT, b, 2, NULL);
            continue;
        }
        rc = run(s, HL_Q_DELIV_INSERT, b, HL_NARGS(b), &ins);
        added += ins.changed;
    }
    json_decref(env);
    hl_rows_clear(&rows);
    if (rc == HL_OK && added) {
        *made += added;
        rc = wake_all(s);
    }
    return rc;
}

int hl_sql_apply(struct hl_sess *s, const struct hl_change *ch, size_t n,
                 const struct hl_idem *idem, int64_t *made)
{
    int rc = HL_OK;
    for (size_t i = 0; i < n && rc == HL_OK; i++) {
        rc = apply_resource(s, &ch[i]);
        if (rc == HL_OK)
            rc = apply_file(s, &ch[i]);
        int64_t filter_event = 0;
        if (rc == HL_OK && ch[i].ev)
            rc = s->st->be->event(s, &ch[i], made, &filter_event);
        if (rc == HL_OK && filter_event)
            rc = fan_out_filtered(s, &ch[i], filter_event, made);
    }
    if (rc == HL_OK && idem && n > 0)
        rc = put_idem(s, &ch[0], idem);
    return rc;
}

int hl_store_idem_get(struct hl_store *st, int64_t app_id, const char *key, int64_t not_before,
                      struct hl_idem_hit *out)
{
    struct hl_arg a[] = {hl_arg_int(app_id), hl_arg_text(key), hl_arg_int(not_before)};
    return get(st, HL_SESS_READ, HL_Q_IDEM_GET, a, HL_NARGS(a), &hl_read_idem_hit, out);
}

/* Where a list by time (EV_LIST_TIME_SQL, DL_LIST_TIME_SQL) starts: *hi, the highest created_at
 * wanted (until is exclusive), and *at, the created_at of the cursor's row (q finds it by the
 * arguments a; INT64_MAX for the first page). A cursor whose row is gone (pruned) keeps its
 * place by id alone (*at INT64_MIN: every row below its id). */
static int time_bounds(struct hl_store *st, int64_t until, int64_t after_id, int q,
                       const struct hl_arg *a, size_t n, int64_t *hi, int64_t *at)
{
    *hi = until > 0 ? until - 1 : INT64_MAX;
    *at = INT64_MAX;
    if (after_id <= 0)
        return HL_OK;
    int rc = get(st, HL_SESS_READ, q, a, n, &hl_read_int, at);
    if (rc == HL_ENOTFOUND) {
        *at = INT64_MIN;
        return HL_OK;
    }
    if (rc == HL_OK && *at < *hi)
        *hi = *at;
    return rc;
}

/* A keyset page starts below this id: the cursor, or above every id for the first page (a plain
 * "id < ?" lets the index seek there, where "cursor = 0 OR id < cursor" would not). */
static int64_t before_id(int64_t after_id)
{
    return after_id > 0 ? after_id : INT64_MAX;
}

int hl_store_event_list(struct hl_store *st, int64_t app_id, const struct hl_event_filter *f,
                        int64_t after_id, size_t limit, struct hl_event **out, size_t *n)
{
    /* The index of the most selective filter given; the others are checked on its rows. */
    int q = f->tenant              ? HL_Q_EV_LIST_TENANT
            : f->type >= 0         ? HL_Q_EV_LIST_TYPE
            : f->since || f->until ? HL_Q_EV_LIST_TIME
                                   : HL_Q_EV_LIST;
    int64_t hi = INT64_MAX, at = INT64_MAX;
    if (q == HL_Q_EV_LIST_TIME) {
        struct hl_arg c[] = {hl_arg_int(app_id), hl_arg_int(after_id)};
        int rc = time_bounds(st, f->until, after_id, HL_Q_EV_AT, c, HL_NARGS(c), &hi, &at);
        if (rc)
            return rc;
    }
    struct hl_arg a[] = {
        hl_arg_int(app_id),         hl_arg_int(f->type),  hl_arg_text(f->tenant),
        hl_arg_int(f->since),       hl_arg_int(f->until), hl_arg_int(before_id(after_id)),
        hl_arg_int((int64_t)limit), hl_arg_int(hi),       hl_arg_int(at)};
    /* SQLite binds no parameter past the last one a statement names */
    size_t na = q == HL_Q_EV_LIST_TIME ? HL_NARGS(a) : 7;
    return list(st, q, a, na, &hl_read_event, (void **)out, n);
}

/* ---- the dispatcher's side ---- */

int hl_sql_record_delivery(struct hl_sess *s, const struct hl_attempt *at, int64_t now)
{
    size_t keep = hl_sql_response_keep(at);
    struct hl_arg a[] = {hl_arg_int(at->delivery_id), hl_arg_int(at->started_at),
                         hl_arg_int(at->duration_us), hl_arg_int(at->status_code),
                         hl_arg_text(at->error),      hl_arg_blob(at->response, keep)};
    int rc = run(s, HL_Q_ATTEMPT_INSERT, a, HL_NARGS(a), NULL);
    if (rc)
        return rc;
    struct hl_arg b[] = {hl_arg_int(at->delivery_id), hl_arg_int(at->status_code),
                         hl_arg_text(at->error), hl_arg_int(at->next_attempt_at)};
    if (at->outcome == HL_OUT_SUCCESS) {
        b[2] = hl_arg_int(now); /* delivered_at */
        return run(s, HL_Q_DELIV_SUCCESS, b, 3, NULL);
    }
    if (at->outcome == HL_OUT_RETRY)
        return run(s, HL_Q_DELIV_RETRY, b, 4, NULL);
    rc = run(s, HL_Q_DELIV_FAILED, b, 3, NULL);
    if (rc == HL_OK && at->outcome == HL_OUT_FAILED)
        rc = hl_sql_alert_exhausted(s, at, now);
    return rc;
}

int hl_sql_disable(struct hl_sess *s, const struct hl_attempt *at, int64_t now, int *disabled)
{
    int gone = at->outcome == HL_OUT_GONE;
    if (!gone && !at->disable_failing_since)
        return HL_OK;
    struct hl_arg a[] = {hl_arg_int(at->webhook_id), hl_arg_int(now),
                         hl_arg_text(at->disable_reason), hl_arg_int(at->disable_failing_since)};
    struct hl_rows rows = {0};
    int rc = run(s, gone ? HL_Q_WH_GONE : HL_Q_WH_AUTODISABLE, a, gone ? 3 : 4, &rows);
    if (rc == HL_OK && rows.changed) {
        *disabled = 1;
        rc = hl_sql_alert_disabled(s, at->webhook_id, at->disable_reason, now);
    }
    return rc;
}

int hl_sql_breaker(struct hl_sess *s, const struct hl_attempt *at, const struct hl_attempt *prev,
                   int64_t now)
{
    if (prev && prev->outcome == HL_OUT_SUCCESS && at->outcome == HL_OUT_SUCCESS)
        return HL_OK;
    struct hl_arg a[] = {hl_arg_int(at->webhook_id),
                         hl_arg_int(at->outcome == HL_OUT_SUCCESS),
                         hl_arg_int(now),
                         hl_arg_int(at->breaker_after),
                         hl_arg_int(at->breaker_probe_at),
                         hl_arg_int(at->breaker_probe != 0)};
    return run(s, HL_Q_WH_BREAKER, a, HL_NARGS(a), NULL);
}

int hl_sql_park(struct hl_sess *s, int64_t webhook_id)
{
    struct hl_arg a[] = {hl_arg_int(webhook_id)};
    return run(s, HL_Q_WH_PAUSE_DELIVERIES, a, HL_NARGS(a), NULL);
}

int hl_store_next_release(struct hl_store *st, int64_t now, int64_t *at)
{
    struct hl_arg a[] = {hl_arg_int(now)};
    *at = 0;
    int rc = get(st, HL_SESS_DISPATCH, HL_Q_NEXT_RELEASE, a, HL_NARGS(a), &hl_read_int, at);
    return rc == HL_ENOTFOUND ? HL_OK : rc;
}

int hl_store_next_due(struct hl_store *st, int64_t now, int64_t *at)
{
    struct hl_arg a[] = {hl_arg_int(now)};
    *at = 0;
    int rc = get(st, HL_SESS_DISPATCH, HL_Q_NEXT_DUE, a, HL_NARGS(a), &hl_read_int, at);
    return rc == HL_ENOTFOUND ? HL_OK : rc;
}

/* Adds the rows of a gauge query to count[] and oldest[] (n states), at the index which maps
 * a row to (negative: a group no state takes). */
static void fold_gauges(const struct hl_gauge_row *g, size_t rows,
                        int (*which)(const struct hl_gauge_row *), int64_t *count, int64_t *oldest,
                        size_t n)
{
    for (size_t i = 0; i < rows; i++) {
        int k = which(&g[i]);
        if (k < 0 || (size_t)k >= n)
            continue;
        count[k] += g[i].n;
        if (oldest && g[i].oldest && (!oldest[k] || g[i].oldest < oldest[k]))
            oldest[k] = g[i].oldest;
    }
}

static int delivery_state(const struct hl_gauge_row *g)
{
    if (g->state == HL_DS_PAUSED_N)
        return HL_QS_PAUSED;
    if (g->state == SQL_GAUGE_OWED_N)
        return HL_QS_DEFERRED;
    return g->state == HL_DS_PENDING_N ? (g->sub ? HL_QS_FAILING : HL_QS_PENDING) : -1;
}

static int webhook_state(const struct hl_gauge_row *g)
{
    if (g->state == SQL_GAUGE_BREAKER_N)
        return HL_WS_BREAKER_OPEN;
    return g->sub ? HL_WS_DISABLED : g->state ? HL_WS_ACTIVE : HL_WS_PAUSED;
}

static int file_state(const struct hl_gauge_row *g)
{
    return g->state == 0 ? HL_FS_WAITING : g->state == 1 ? HL_FS_PROCESSING : -1;
}

int hl_store_gauges(struct hl_store *st, struct hl_store_gauges *out)
{
    memset(out, 0, sizeof(*out));
    const struct {
        int q;
        int (*which)(const struct hl_gauge_row *);
        int64_t *count, *oldest;
        size_t n;
    } reads[] = {
        {HL_Q_GAUGE_DELIVERIES, delivery_state, out->deliveries, out->oldest_delivery, HL_QS_COUNT},
        {HL_Q_GAUGE_WEBHOOKS, webhook_state, out->webhooks, NULL, HL_WS_COUNT},
        {HL_Q_GAUGE_FILES, file_state, out->files, out->oldest_file, HL_FS_COUNT},
    };
    struct hl_sess s;
    int rc = st->be->open(st, HL_SESS_READ, &s);
    if (rc)
        return rc;
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]) && rc == HL_OK; i++) {
        struct hl_rows rows = {.rd = &hl_read_gauge};
        rc = run(&s, reads[i].q, NULL, 0, &rows);
        if (rc == HL_OK)
            fold_gauges(rows.arr, rows.n, reads[i].which, reads[i].count, reads[i].oldest,
                        reads[i].n);
        hl_rows_clear(&rows);
    }
    return st->be->close(&s, rc);
}

/* ---- operating deliveries ---- */

/* Reads every row of q inside a session; on error, none. */
static int list_in(struct hl_sess *s, int q, const struct hl_arg *a, size_t n,
                   const struct hl_reader *rd, void **out, size_t *len)
{
    struct hl_rows rows = {.rd = rd};
    int rc = run(s, q, a, n, &rows);
    if (rc) {
        hl_rows_clear(&rows);
        return rc;
    }
    *out = rows.arr;
    *len = rows.n;
    return HL_OK;
}

/* In one snapshot: the first row of q into out (HL_ENOTFOUND when none) and, when list is not
 * NULL, every row of q2 for the id that row holds (*id, a field of out). One snapshot, so a
 * delivery's attempt count and its attempt log, or an event and its deliveries, always agree. */
static int get_with_list(struct hl_store *st, int q, const struct hl_arg *a, size_t na,
                         const struct hl_reader *rd, void *out, const int64_t *id, int q2,
                         const struct hl_reader *rd2, void **list, size_t *n)
{
    struct hl_sess s;
    int rc = st->be->open(st, HL_SESS_SNAPSHOT, &s);
    if (rc)
        return rc;
    struct hl_rows rows = {.rd = rd, .one = out};
    rc = run(&s, q, a, na, &rows);
    if (rc == HL_OK && rows.n == 0)
        rc = HL_ENOTFOUND;
    if (rc == HL_OK && list) {
        struct hl_arg b[] = {hl_arg_int(*id)};
        rc = list_in(&s, q2, b, HL_NARGS(b), rd2, list, n);
    }
    rc = st->be->close(&s, rc);
    if (rc)
        hl_rows_clear(&rows);
    return rc;
}

int hl_store_event_get(struct hl_store *st, int64_t app_id, const char *uid, struct hl_event *ev,
                       struct hl_delivery **dl, size_t *n)
{
    struct hl_arg a[] = {hl_arg_int(app_id), hl_arg_text(uid)};
    return get_with_list(st, HL_Q_EV_GET, a, HL_NARGS(a), &hl_read_event, ev, &ev->id,
                         HL_Q_DL_BY_EVENT, &hl_read_delivery, (void **)dl, n);
}

/* One webhook's newest deliveries that pass the filter (sql.h, DL_LIST_SQL), appended to rows:
 * the statement that seeks the index of the filter given (status, then event type, then time;
 * the others are checked on its rows). hi and at: time_bounds' for a filter by time. */
static int dl_page(struct hl_sess *s, int64_t app_id, int64_t webhook_id,
                   const struct hl_delivery_filter *f, int64_t after_id, size_t limit, int64_t hi,
                   int64_t at, struct hl_rows *rows)
{
    /* failing is a pending delivery whose last attempt failed: its rows are pending ones */
    int stored = f->status == HL_DS_FAILING ? HL_DS_PENDING : f->status;
    int q = f->status == HL_DS_FAILING ? HL_Q_DL_LIST_FAILING
            : f->status >= 0           ? HL_Q_DL_LIST_STATUS
            : f->type >= 0             ? HL_Q_DL_LIST_TYPE
            : f->since || f->until     ? HL_Q_DL_LIST_TIME
                                       : HL_Q_DL_LIST;
    struct hl_arg a[] = {hl_arg_int(webhook_id),
                         hl_arg_int(app_id),
                         hl_arg_int(f->status),
                         hl_arg_int(f->type),
                         hl_arg_int(f->since),
                         hl_arg_int(f->until),
                         hl_arg_int(before_id(after_id)),
                         hl_arg_int((int64_t)limit),
                         hl_arg_int(stored),
                         hl_arg_int(hi),
                         hl_arg_int(at)};
    /* SQLite binds no parameter past the last one a statement names */
    size_t na = q == HL_Q_DL_LIST_TIME ? 11 : q == HL_Q_DL_LIST_STATUS ? 9 : 8;
    return run(s, q, a, na, rows);
}

/* Newest first by id; within since/until alone, by creation time, then id (DL_LIST_TIME_SQL). */
static int newest_by_id(const void *x, const void *y)
{
    const struct hl_delivery *a = x, *b = y;
    return a->id < b->id ? 1 : a->id > b->id ? -1 : 0;
}

static int newest_by_time(const void *x, const void *y)
{
    const struct hl_delivery *a = x, *b = y;
    if (a->created_at != b->created_at)
        return a->created_at < b->created_at ? 1 : -1;
    return newest_by_id(x, y);
}

/* The app's deliveries: each webhook's newest page from its own index, then the newest of
 * those; the cost is the app's webhooks times a page, however many deliveries there are. */
static int dl_app_page(struct hl_sess *s, int64_t app_id, const struct hl_delivery_filter *f,
                       int64_t after_id, size_t limit, int64_t hi, int64_t at, struct hl_rows *rows)
{
    int64_t *ids = NULL;
    size_t nw = 0;
    struct hl_rows w = {.rd = &hl_read_int};
    struct hl_arg a[] = {hl_arg_int(app_id)};
    int rc = run(s, HL_Q_WH_IDS, a, HL_NARGS(a), &w);
    ids = w.arr;
    nw = w.n;
    for (size_t i = 0; rc == HL_OK && i < nw; i++)
        rc = dl_page(s, app_id, ids[i], f, after_id, limit, hi, at, rows);
    free(ids);
    if (rc || rows->n < 2)
        return rc;
    struct hl_delivery *d = rows->arr;
    int by_time = f->status < 0 && f->type < 0 && (f->since || f->until);
    qsort(d, rows->n, sizeof(*d), by_time ? newest_by_time : newest_by_id);
    for (size_t i = limit; i < rows->n; i++)
        hl_delivery_clear(&d[i]);
    if (rows->n > limit)
        rows->n = limit;
    return HL_OK;
}

int hl_store_delivery_list(struct hl_store *st, int64_t app_id, int64_t webhook_id,
                           const struct hl_delivery_filter *f, int64_t after_id, size_t limit,
                           struct hl_delivery **out, size_t *n)
{
    int64_t hi = INT64_MAX, at = INT64_MAX;
    if (f->status < 0 && f->type < 0 && (f->since || f->until)) {
        struct hl_arg c[] = {hl_arg_int(after_id)};
        int rc = time_bounds(st, f->until, after_id, HL_Q_DL_AT, c, HL_NARGS(c), &hi, &at);
        if (rc)
            return rc;
    }
    struct hl_sess s;
    int rc = st->be->open(st, HL_SESS_READ, &s);
    if (rc)
        return rc;
    struct hl_rows rows = {.rd = &hl_read_delivery};
    rc = webhook_id ? dl_page(&s, app_id, webhook_id, f, after_id, limit, hi, at, &rows)
                    : dl_app_page(&s, app_id, f, after_id, limit, hi, at, &rows);
    rc = st->be->close(&s, rc);
    if (rc) {
        hl_rows_clear(&rows);
        return rc;
    }
    *out = rows.arr;
    *n = rows.n;
    return HL_OK;
}

int hl_store_delivery_get(struct hl_store *st, int64_t app_id, int64_t id, struct hl_delivery *out,
                          struct hl_attempt_rec **attempts, size_t *n)
{
    struct hl_arg a[] = {hl_arg_int(id), hl_arg_int(app_id)};
    return get_with_list(st, HL_Q_DL_GET, a, HL_NARGS(a), &hl_read_delivery, out, &out->id,
                         HL_Q_ATT_LIST, &hl_read_attempt, (void **)attempts, n);
}

int hl_store_delivery_resend(struct hl_store *st, int64_t app_id, int64_t id, int64_t now)
{
    struct hl_sess s;
    int rc = st->be->open(st, HL_SESS_TX, &s);
    if (rc)
        return rc;
    struct hl_arg a[] = {hl_arg_int(id), hl_arg_int(app_id), hl_arg_int(now)};
    struct hl_rows rows = {0};
    /* While its breaker is open: its probe, now. The webhook row first (postgres.c: lock
     * order); should the resend change nothing, the transaction rolls back with it. */
    struct hl_arg p[] = {hl_arg_int(id), hl_arg_int(now)};
    rc = run(&s, HL_Q_BREAKER_PROBE, p, HL_NARGS(p), NULL);
    if (rc == HL_OK)
        rc = run(&s, HL_Q_DL_RESEND, a, HL_NARGS(a), &rows);
    if (rc == HL_OK && rows.changed) {
        rc = run(&s, HL_Q_BREAKER_FIRST, p, 1, NULL);
    } else if (rc == HL_OK) {
        /* Not this app's, its webhook deleted, or an attempt in flight on some node. */
        struct hl_delivery d = {0};
        struct hl_rows found = {.rd = &hl_read_delivery, .one = &d};
        rc = run(&s, HL_Q_DL_GET, a, 2, &found);
        if (rc == HL_OK)
            rc = !found.n ? HL_ENOTFOUND : d.webhook_deleted_at ? HL_EREFUSED : HL_ECONFLICT;
        hl_rows_clear(&found);
    }
    if (rc == HL_OK)
        rc = wake_all(&s);
    rc = st->be->close(&s, rc);
    if (rc == HL_OK)
        hl_store_notify(st);
    return rc;
}

int hl_store_recover(struct hl_store *st, int64_t webhook_id, int64_t since, int64_t until,
                     int64_t now, struct hl_recovered *out)
{
    memset(out, 0, sizeof(*out));
    struct hl_sess s;
    int rc = st->be->open(st, HL_SESS_TX, &s);
    if (rc)
        return rc;
    struct hl_arg a[] = {hl_arg_int(webhook_id), hl_arg_int(since), hl_arg_int(until),
                         hl_arg_int(now)};
    /* A recover closes the circuit breaker (sql.h, SQL_BREAKER_QUERIES): its held-back
     * deliveries go too, not only those recovered. The webhook row before its deliveries
     * (postgres.c: lock order). */
    struct hl_rows closed = {0};
    rc = run(&s, HL_Q_BREAKER_CLOSE, a, 1, &closed);
    /* Failing ones first: the failed ones queued again would look failing too. */
    struct hl_rows failed = {0}, failing = {0};
    if (rc == HL_OK)
        rc = run(&s, HL_Q_RECOVER_FAILING, a, HL_NARGS(a), &failing);
    if (rc == HL_OK)
        rc = run(&s, HL_Q_RECOVER, a, HL_NARGS(a), &failed);
    int64_t queued = failed.changed + failing.changed;
    if (rc == HL_OK && (queued || closed.changed))
        rc = wake_all(&s);
    rc = st->be->close(&s, rc);
    if (rc == HL_OK) {
        out->failed = failed.changed;
        out->failing = failing.changed;
        if (queued || closed.changed)
            hl_store_notify(st);
    }
    return rc;
}

int hl_store_recover_count(struct hl_store *st, int64_t webhook_id, int64_t since, int64_t until,
                           int64_t now, struct hl_recovered *out)
{
    struct hl_arg a[] = {hl_arg_int(webhook_id), hl_arg_int(since), hl_arg_int(until),
                         hl_arg_int(now)};
    int64_t counts[2] = {0, 0};
    int rc = get(st, HL_SESS_READ, HL_Q_RECOVER_COUNT, a, HL_NARGS(a), &hl_read_pair, counts);
    *out = (struct hl_recovered){.failed = counts[0], .failing = counts[1]};
    return rc;
}

static int by_bucket_duration(const void *a, const void *b)
{
    const struct hl_series_point *x = a, *y = b;
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    return (x->p50_us > y->p50_us) - (x->p50_us < y->p50_us);
}

int hl_store_webhook_series(struct hl_store *st, int64_t webhook_id, int64_t since, int64_t until,
                            int64_t step, struct hl_series_point **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (step <= 0 || until <= since)
        return HL_EINVAL;
    struct hl_arg a[] = {hl_arg_int(webhook_id), hl_arg_int(since), hl_arg_int(until),
                         hl_arg_int(step)};
    struct hl_series_point *p = NULL;
    size_t len = 0;
    int rc = list(st, HL_Q_WH_SERIES, a, HL_NARGS(a), &hl_read_series, (void **)&p, &len);
    if (rc)
        return rc;
    /* one point per attempt, its duration in p50_us: by bucket, then by duration */
    if (len > 1)
        qsort(p, len, sizeof(*p), by_bucket_duration);
    size_t k = 0;
    for (size_t i = 0, j; i < len; i = j) {
        int64_t ok = 0;
        for (j = i; j < len && p[j].bucket == p[i].bucket; j++)
            ok += p[j].successes;
        size_t cnt = j - i;
        /* nearest rank: the ceil(n p / 100)-th shortest */
        int64_t p50 = p[i + (cnt * 50 + 99) / 100 - 1].p50_us;
        int64_t p95 = p[i + (cnt * 95 + 99) / 100 - 1].p50_us;
        p[k++] = (struct hl_series_point){.bucket = p[i].bucket,
                                          .attempts = (int64_t)cnt,
                                          .successes = ok,
                                          .p50_us = p50,
                                          .p95_us = p95};
    }
    *out = p;
    *n = k;
    return HL_OK;
}

/* ---- the console's portal links ---- */

int hl_store_console_key(struct hl_store *st, const uint8_t fresh[32], uint8_t out[32])
{
    struct hl_arg a[] = {hl_arg_blob(fresh, 32), hl_arg_int(hl_now_ms())};
    int rc = hl_sql_once(st, HL_SESS_WRITE, HL_Q_CONSOLE_KEY_INSERT, a, HL_NARGS(a), NULL);
    struct hl_key32 k;
    if (rc == HL_OK)
        rc = get(st, HL_SESS_WRITE, HL_Q_CONSOLE_KEY_GET, NULL, 0, &hl_read_key32, &k);
    if (rc == HL_OK && !k.ok)
        rc = HL_ESTORE;
    if (rc == HL_OK)
        memcpy(out, k.b, 32);
    return rc;
}

int hl_store_portal_use(struct hl_store *st, const char *token_id, int64_t expires_at, int64_t now)
{
    struct hl_arg old[] = {hl_arg_int(now - HL_STORE_EXPIRY_MARGIN_MS)};
    int rc = hl_sql_once(st, HL_SESS_WRITE, HL_Q_PORTAL_PRUNE, old, HL_NARGS(old), NULL);
    if (rc)
        return rc;
    struct hl_arg a[] = {hl_arg_text(token_id), hl_arg_int(expires_at)};
    struct hl_rows rows = {0};
    rc = hl_sql_once(st, HL_SESS_WRITE, HL_Q_PORTAL_USE, a, HL_NARGS(a), &rows);
    return rc == HL_OK && rows.changed == 0 ? HL_ECONFLICT : rc;
}

int hl_store_session_end(struct hl_store *st, const char *token_id, int64_t expires_at, int64_t now)
{
    int rc = hl_store_portal_use(st, token_id, expires_at, now);
    return rc == HL_ECONFLICT ? HL_OK : rc;
}

int hl_store_session_ended(struct hl_store *st, const char *token_id, int *ended)
{
    struct hl_arg a[] = {hl_arg_text(token_id)};
    int64_t n = 0;
    int rc = get(st, HL_SESS_READ, HL_Q_TOKEN_SPENT, a, HL_NARGS(a), &hl_read_int, &n);
    *ended = rc == HL_OK && n > 0;
    return rc == HL_ENOTFOUND ? HL_OK : rc;
}

/* ---- context-file ingestion ---- */

int hl_store_ingest_renew(struct hl_store *st, const char *file_uid, int64_t attempts,
                          int64_t lease_until)
{
    struct hl_arg a[] = {hl_arg_text(file_uid), hl_arg_int(attempts), hl_arg_int(lease_until)};
    return change_one(st, HL_Q_FILE_RENEW, a, HL_NARGS(a));
}

int hl_store_ingest_release(struct hl_store *st, const char *file_uid, int64_t attempts,
                            int64_t refund)
{
    struct hl_arg a[] = {hl_arg_text(file_uid), hl_arg_int(attempts), hl_arg_int(refund)};
    return change_one(st, HL_Q_FILE_RELEASE, a, HL_NARGS(a));
}

int hl_store_chunk_list(struct hl_store *st, int64_t app_id, const char *file_uid, int64_t after,
                        size_t limit, struct hl_text_chunk **out, size_t *n)
{
    struct hl_arg a[] = {hl_arg_int(app_id), hl_arg_text(file_uid), hl_arg_int(after),
                         hl_arg_int((int64_t)limit)};
    return list(st, HL_Q_CHUNK_LIST, a, HL_NARGS(a), &hl_read_chunk, (void **)out, n);
}

int hl_store_file_path(struct hl_store *st, int64_t app_id, const char *file_uid, char **path)
{
    struct hl_arg a[] = {hl_arg_int(app_id), hl_arg_text(file_uid)};
    return get(st, HL_SESS_READ, HL_Q_FILE_PATH, a, HL_NARGS(a), &hl_read_str, path);
}

/* ---- retention ---- */

/* Reads the next old events after the cursor, in creation order, and sorts them: the prunable
 * ones' ids into ids (*n), the owed ones counted in out. */
static int prune_scan(struct hl_store *st, const struct hl_prune *p, int64_t *ids, size_t *n,
                      struct hl_prune_result *out)
{
    struct hl_arg a[] = {hl_arg_int(p->before), hl_arg_int(p->after_at), hl_arg_int(p->after_id),
                         hl_arg_int((int64_t)p->scan)};
    struct hl_rows rows = {.rd = &hl_read_prune};
    int rc = hl_sql_once(st, HL_SESS_READ, HL_Q_PRUNE_SCAN, a, HL_NARGS(a), &rows);
    if (rc)
        return rc;
    const struct hl_prune_row *r = rows.arr;
    size_t i = 0, max = p->max_events ? p->max_events : p->scan;
    for (; i < rows.n && *n < max; i++) {
        out->last_at = r[i].created_at;
        out->last_id = r[i].id;
        if (r[i].owed)
            out->kept_owed++;
        else
            ids[(*n)++] = r[i].id;
    }
    /* every old event after the cursor was seen (and not left for the next step) */
    out->done = rows.n < p->scan && i == rows.n;
    hl_rows_clear(&rows);
    return HL_OK;
}

/* In a transaction: removes the events named that are still prunable now, with their
 * deliveries and attempts. The scan ran on a snapshot: a delivery resent since is owed again,
 * and its event keeps everything. */
static int prune_write(struct hl_sess *s, const struct hl_arg *ids, struct hl_prune_result *out)
{
    int64_t may = 0;
    struct hl_rows guard = {.rd = &hl_read_int, .one = &may};
    int rc = run(s, HL_Q_PRUNE_GUARD, NULL, 0, &guard);
    if (rc == HL_OK && !may) {
        out->busy = 1;
        return HL_OK;
    }
    struct hl_rows a = {0}, d = {0}, e = {0};
    if (rc == HL_OK)
        rc = run(s, HL_Q_PRUNE_LOCK, ids, 1, NULL);
    if (rc == HL_OK)
        rc = run(s, HL_Q_PRUNE_ATTEMPTS, ids, 1, &a);
    if (rc == HL_OK)
        rc = run(s, HL_Q_PRUNE_DELIVERIES, ids, 1, &d);
    if (rc == HL_OK)
        rc = run(s, HL_Q_PRUNE_EVENTS, ids, 1, &e);
    if (rc == HL_OK) {
        out->attempts = a.changed;
        out->deliveries = d.changed;
        out->events = e.changed;
    }
    return rc;
}

int hl_store_prune(struct hl_store *st, const struct hl_prune *p, struct hl_prune_result *out)
{
    memset(out, 0, sizeof(*out));
    out->last_at = p->after_at;
    out->last_id = p->after_id;
    if (p->scan == 0 || p->scan > HL_PRUNE_SCAN_MAX)
        return HL_EINVAL;
    int64_t *ids = malloc(p->scan * sizeof(*ids));
    if (!ids)
        return HL_ENOMEM;
    size_t n = 0;
    int rc = prune_scan(st, p, ids, &n, out);
    struct hl_arg arg[] = {hl_arg_ids(ids, n)};
    if (rc || n == 0)
        goto out;
    if (p->dry_run) {
        int64_t counts[2] = {0, 0};
        rc = get(st, HL_SESS_READ, HL_Q_PRUNE_COUNT, arg, 1, &hl_read_pair, counts);
        out->events = (int64_t)n;
        out->deliveries = counts[0];
        out->attempts = counts[1];
        goto out;
    }
    /* Lazy: a prune lost in a crash is only done again. */
    struct hl_sess s;
    if ((rc = st->be->open(st, HL_SESS_TX_LAZY, &s)))
        goto out;
    int64_t t0 = hl_mono_us();
    rc = st->be->close(&s, prune_write(&s, arg, out));
    out->write_us = hl_mono_us() - t0;
    if (rc) {
        out->events = out->deliveries = out->attempts = 0;
        out->busy = 0;
        goto out;
    }
    __atomic_add_fetch(&st->pruned[0], (uint64_t)out->events, __ATOMIC_RELAXED);
    __atomic_add_fetch(&st->pruned[1], (uint64_t)out->deliveries, __ATOMIC_RELAXED);
    __atomic_add_fetch(&st->pruned[2], (uint64_t)out->attempts, __ATOMIC_RELAXED);
out:
    free(ids);
    return rc;
}

int hl_store_idem_expire(struct hl_store *st, int64_t before, size_t max, int dry_run, int64_t *n)
{
    *n = 0;
    if (dry_run) {
        struct hl_arg a[] = {hl_arg_int(before)};
        return get(st, HL_SESS_READ, HL_Q_IDEM_COUNT, a, HL_NARGS(a), &hl_read_int, n);
    }
    struct hl_arg a[] = {hl_arg_int(before), hl_arg_int((int64_t)max)};
    struct hl_rows rows = {0};
    int rc = hl_sql_once(st, HL_SESS_WRITE, HL_Q_IDEM_EXPIRE, a, HL_NARGS(a), &rows);
    if (rc == HL_OK)
        *n = rows.changed;
    return rc;
}

int hl_store_oldest_event(struct hl_store *st, int64_t *created_at)
{
    *created_at = 0;
    int rc = get(st, HL_SESS_READ, HL_Q_OLDEST_EVENT, NULL, 0, &hl_read_int, created_at);
    return rc == HL_ENOTFOUND ? HL_OK : rc;
}

int hl_store_fold_counts(struct hl_store *st)
{
    return hl_sql_once(st, HL_SESS_WRITE, HL_Q_CNT_FOLD, NULL, 0, NULL);
}

void hl_store_pruned(struct hl_store *st, struct hl_pruned *out)
{
    out->events = __atomic_load_n(&st->pruned[0], __ATOMIC_RELAXED);
    out->deliveries = __atomic_load_n(&st->pruned[1], __ATOMIC_RELAXED);
    out->attempts = __atomic_load_n(&st->pruned[2], __ATOMIC_RELAXED);
}

int hl_store_app_storage(struct hl_store *st, int64_t app_id, int64_t *bytes)
{
    struct hl_arg a[] = {hl_arg_int(app_id)};
    *bytes = 0;
    return get(st, HL_SESS_READ, HL_Q_APP_STORAGE, a, HL_NARGS(a), &hl_read_int, bytes);
}
