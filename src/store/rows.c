/* Rows into structs, once for both backends: each reader takes the columns its HL_*_COLS list
 * in sql.h names, in that order, through the backend's struct hl_cols. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "store/sql.h"

int hl_sql_check(const char *const *sql, int n, char *err, size_t errlen)
{
    for (int q = 0; q < n; q++) {
        if (!sql[q]) {
            snprintf(err, errlen, "store: query %d has no SQL", q);
            return HL_EINVAL;
        }
    }
    return HL_OK;
}

int hl_ids_text(struct hl_buf *b, const int64_t *ids, size_t n, char open, char close)
{
    int rc = hl_buf_putc(b, open);
    for (size_t i = 0; i < n && rc == HL_OK; i++)
        rc = hl_buf_printf(b, "%s%lld", i ? "," : "", (long long)ids[i]);
    return rc == HL_OK ? hl_buf_putc(b, close) : rc;
}

void hl_event_args(const struct hl_event *e, struct hl_arg a[HL_EVENT_ARGS])
{
    a[0] = hl_arg_text(e->uid);
    a[1] = hl_arg_int(e->app_id);
    a[2] = hl_arg_int(e->type);
    a[3] = hl_arg_text(e->tenant);
    a[4] = hl_arg_text(e->resource_uid);
    a[5] = hl_arg_int(e->created_at);
    a[6] = hl_arg_blob(e->payload, e->payload_len);
}

/* ---- earlier secrets ---- */

void hl_prev_secrets_read(const char *p, size_t len, struct hl_prev_secrets *out)
{
    memset(out, 0, sizeof(*out));
    size_t i = 0;
    while (p && i < len && out->n < HL_PREV_SECRETS_MAX) {
        int64_t until = 0;
        size_t start = i;
        while (i < len && p[i] >= '0' && p[i] <= '9' && i - start < 18)
            until = until * 10 + (p[i++] - '0');
        if (i == start || i >= len || p[i++] != ' ')
            return;
        start = i;
        while (i < len && p[i] != ' ')
            i++;
        size_t n = i - start;
        if (n == 0 || n >= HL_SECRET_SIZE)
            return;
        struct hl_prev_secret *v = &out->v[out->n++];
        memcpy(v->secret, p + start, n);
        v->secret[n] = '\0';
        v->until = until;
        if (i < len)
            i++; /* the space before the next pair */
    }
}

int64_t hl_prev_secrets_write(const struct hl_prev_secrets *in, char *out)
{
    size_t used = 0;
    int64_t latest = 0;
    out[0] = '\0';
    for (int k = 0; k < in->n && k < HL_PREV_SECRETS_MAX; k++) {
        int w = snprintf(out + used, HL_PREV_SECRETS_TEXT_MAX - used, "%s%lld %s", k ? " " : "",
                         (long long)in->v[k].until, in->v[k].secret);
        if (w < 0 || (size_t)w >= HL_PREV_SECRETS_TEXT_MAX - used) {
            out[used] = '\0'; /* cannot happen with secrets below HL_SECRET_SIZE */
            break;
        }
        used += (size_t)w;
        if (in->v[k].until > latest)
            latest = in->v[k].until;
    }
    return latest;
}

/* ---- columns ---- */

static int64_t col_i64(struct hl_row *r, int col)
{
    return r->cols->i64(r, col);
}

/* Copies a text column into out (cap bytes, NUL-terminated, cut if longer). */
static void col_copy(struct hl_row *r, int col, char *out, size_t cap)
{
    size_t len = 0;
    const char *p = r->cols->bytes(r, col, &len);
    if (!p)
        len = 0;
    if (len >= cap)
        len = cap - 1;
    if (len)
        memcpy(out, p, len);
    out[len] = '\0';
}

/* A malloc'd, NUL-terminated copy of a column (its length in *len when not NULL); NULL for SQL
 * NULL, and NULL with r->oom set when out of memory. */
static char *col_dup(struct hl_row *r, int col, size_t *len)
{
    size_t n = 0;
    const char *p = r->cols->bytes(r, col, &n);
    if (!p)
        return NULL;
    char *s = malloc(n + 1);
    if (!s) {
        r->oom = 1;
        return NULL;
    }
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    if (len)
        *len = n;
    return s;
}

static int done(struct hl_row *r)
{
    return r->oom ? HL_ENOMEM : HL_OK;
}

/* Reads the earlier secrets of a prev_secrets column. */
static void col_prev_secrets(struct hl_row *r, int col, struct hl_prev_secrets *out)
{
    size_t len = 0;
    const char *p = r->cols->bytes(r, col, &len);
    hl_prev_secrets_read(p, p ? len : 0, out);
}

/* ---- readers ---- */

static void app_at(struct hl_row *r, int c, struct hl_app *a)
{
    a->id = col_i64(r, c);
    col_copy(r, c + 1, a->uid, sizeof(a->uid));
    col_copy(r, c + 2, a->name, sizeof(a->name));
    a->created_at = col_i64(r, c + 3);
}

static int read_app(struct hl_row *r, void *item)
{
    app_at(r, 0, item);
    return HL_OK;
}

static int read_key(struct hl_row *r, void *item)
{
    struct hl_api_key *k = item;
    col_copy(r, 0, k->uid, sizeof(k->uid));
    k->app_id = col_i64(r, 1);
    col_copy(r, 2, k->app_uid, sizeof(k->app_uid));
    col_copy(r, 3, k->prefix, sizeof(k->prefix));
    k->created_at = col_i64(r, 4);
    k->revoked_at = col_i64(r, 5);
    return HL_OK;
}

static int read_key_hit(struct hl_row *r, void *item)
{
    struct hl_key_hit *k = item;
    app_at(r, 0, &k->app);
    size_t len = 0;
    const void *h = r->cols->bytes(r, 4, &len);
    k->hash_ok = h && len == sizeof(k->hash);
    if (k->hash_ok)
        memcpy(k->hash, h, sizeof(k->hash));
    col_copy(r, 5, k->key_uid, sizeof(k->key_uid));
    return HL_OK;
}

static int read_key32(struct hl_row *r, void *item)
{
    struct hl_key32 *k = item;
    size_t len = 0;
    const void *b = r->cols->bytes(r, 0, &len);
    k->ok = b && len == sizeof(k->b);
    if (k->ok)
        memcpy(k->b, b, sizeof(k->b));
    return HL_OK;
}

static int read_series(struct hl_row *r, void *item)
{
    /* one attempt (HL_SERIES_SQL), its duration in p50_us until ops.c folds the bucket */
    struct hl_series_point *p = item;
    p->bucket = col_i64(r, 0);
    p->attempts = 1;
    p->successes = col_i64(r, 1);
    p->p50_us = col_i64(r, 2);
    return HL_OK;
}

static int read_webhook(struct hl_row *r, void *item)
{
    struct hl_webhook *w = item;
    w->id = col_i64(r, 0);
    col_copy(r, 1, w->uid, sizeof(w->uid));
    w->app_id = col_i64(r, 2);
    w->url = col_dup(r, 3, NULL);
    w->description = col_dup(r, 4, NULL);
    w->entities = (unsigned)col_i64(r, 5);
    w->event_types = (unsigned)col_i64(r, 6);
    w->active = (int)col_i64(r, 7);
    col_copy(r, 8, w->secret, sizeof(w->secret));
    col_prev_secrets(r, 9, &w->prev);
    w->created_at = col_i64(r, 10);
    w->updated_at = col_i64(r, 11);
    w->last_triggered_at = col_i64(r, 12);
    w->last_success_at = col_i64(r, 13);
    w->last_failure_at = col_i64(r, 14);
    w->failing_since = col_i64(r, 15);
    w->disabled_at = col_i64(r, 16);
    w->disabled_reason = col_dup(r, 17, NULL);
    w->deleted_at = col_i64(r, 18);
    /* Delivery policy (issue 19) */
    w->filter = col_dup(r, 19, NULL);
    w->headers = col_dup(r, 20, NULL);
    /* alerting (issue 21) */
    w->kind = (int)col_i64(r, 21);
    w->silence_ms = col_i64(r, 22);
    w->expect_events = (int)col_i64(r, 23);
    /* the circuit breaker, rateLimit, ordering (issue 19) */
    w->breaker_opened_at = col_i64(r, 24);
    w->rate_limit = (int)col_i64(r, 25);
    w->ordering = (int)col_i64(r, 26);
    w->deferred = col_i64(r, 27);
    if (!w->url)
        r->oom = 1; /* NOT NULL: only memory makes it NULL */
    return done(r);
}

static void resource_at(struct hl_row *r, int c, struct hl_resource *res)
{
    res->id = col_i64(r, c);
    res->kind = (enum hl_entity)col_i64(r, c + 1);
    col_copy(r, c + 2, res->uid, sizeof(res->uid));
    res->app_id = col_i64(r, c + 3);
    col_copy(r, c + 4, res->parent_uid, sizeof(res->parent_uid));
    res->tenant = col_dup(r, c + 5, NULL);
    res->body = col_dup(r, c + 6, &res->body_len);
    res->version = col_i64(r, c + 7);
    res->created_at = col_i64(r, c + 8);
    res->updated_at = col_i64(r, c + 9);
    if (!res->tenant || !res->body)
        r->oom = 1;
}

static int read_resource(struct hl_row *r, void *item)
{
    resource_at(r, 0, item);
    return done(r);
}

static int read_event(struct hl_row *r, void *item)
{
    struct hl_event *e = item;
    e->id = col_i64(r, 0);
    col_copy(r, 1, e->uid, sizeof(e->uid));
    e->type = (int)col_i64(r, 2);
    e->app_id = col_i64(r, 3);
    e->tenant = col_dup(r, 4, NULL);
    col_copy(r, 5, e->resource_uid, sizeof(e->resource_uid));
    e->created_at = col_i64(r, 6);
    if (!e->tenant)
        r->oom = 1;
    size_t n = 0;
    const void *p = r->cols->bytes(r, 7, &n);
    int rc = p ? hl_payload_unpack(p, n, &e->payload, &e->payload_len) : HL_ESTORE;
    if (rc == HL_ENOMEM)
        r->oom = 1;
    return r->oom ? HL_ENOMEM : rc;
}

static int read_idem_hit(struct hl_row *r, void *item)
{
    struct hl_idem_hit *h = item;
    size_t len = 0;
    const void *p = r->cols->bytes(r, 0, &len);
    if (p && len == sizeof(h->request_hash))
        memcpy(h->request_hash, p, sizeof(h->request_hash));
    h->status = (int)col_i64(r, 1);
    h->response = col_dup(r, 2, NULL);
    if (!h->response)
        r->oom = 1;
    return done(r);
}

static int read_job(struct hl_row *r, void *item)
{
    struct hl_job *j = item;
    j->delivery_id = col_i64(r, 0);
    j->webhook_id = col_i64(r, 1);
    j->app_id = col_i64(r, 2);
    j->event_id = col_i64(r, 3);
    col_copy(r, 4, j->event_uid, sizeof(j->event_uid));
    j->event_ts = col_i64(r, 5);
    j->attempts = (int)col_i64(r, 6);
    j->created_at = col_i64(r, 7);
    j->url = col_dup(r, 8, NULL);
    col_copy(r, 9, j->secret, sizeof(j->secret));
    col_prev_secrets(r, 10, &j->prev);
    /* The payload as stored: hl_store_claim unpacks it once the claim has let go of the writer. */
    j->payload = col_dup(r, 11, &j->payload_len);
    col_copy(r, 12, j->webhook_uid, sizeof(j->webhook_uid));
    j->headers = col_dup(r, 13, NULL); /* issue 19 */
    j->breaker_opened_at = col_i64(r, 14);
    j->breaker_probes = (int)col_i64(r, 15);
    j->rate_limit = (int)col_i64(r, 16);
    if (!j->url || !j->payload)
        r->oom = 1;
    return done(r);
}

static int read_delivery(struct hl_row *r, void *item)
{
    struct hl_delivery *d = item;
    d->id = col_i64(r, 0);
    d->webhook_id = col_i64(r, 1);
    col_copy(r, 2, d->webhook_uid, sizeof(d->webhook_uid));
    d->webhook_deleted_at = col_i64(r, 3);
    col_copy(r, 4, d->event_uid, sizeof(d->event_uid));
    d->event_type = (int)col_i64(r, 5);
    d->status = (enum hl_delivery_status)col_i64(r, 6);
    d->attempts = (int)col_i64(r, 7);
    d->last_status = (int)col_i64(r, 8);
    d->last_error = col_dup(r, 9, NULL);
    d->next_attempt_at = col_i64(r, 10);
    d->created_at = col_i64(r, 11);
    d->delivered_at = col_i64(r, 12);
    return done(r);
}

static int read_attempt(struct hl_row *r, void *item)
{
    struct hl_attempt_rec *a = item;
    a->started_at = col_i64(r, 0);
    a->duration_us = col_i64(r, 1);
    a->status_code = (int)col_i64(r, 2);
    a->error = col_dup(r, 3, NULL);
    a->response = col_dup(r, 4, &a->response_len);
    return done(r);
}

static int read_wh_stats(struct hl_row *r, void *item)
{
    struct hl_webhook_stats *s = item;
    s->pending = col_i64(r, 0);
    s->succeeded = col_i64(r, 1);
    s->failed = col_i64(r, 2);
    s->failing = col_i64(r, 3);
    return HL_OK;
}

static int read_gauge(struct hl_row *r, void *item)
{
    struct hl_gauge_row *g = item;
    g->state = col_i64(r, 0);
    g->sub = col_i64(r, 1);
    g->n = col_i64(r, 2);
    g->oldest = col_i64(r, 3);
    return HL_OK;
}

static int read_ingest(struct hl_row *r, void *item)
{
    struct hl_ingest_job *j = item;
    col_copy(r, 0, j->file_uid, sizeof(j->file_uid));
    j->app_id = col_i64(r, 1);
    col_copy(r, 2, j->app_uid, sizeof(j->app_uid));
    j->path = col_dup(r, 3, NULL);
    if (!j->path)
        r->oom = 1;
    j->attempts = col_i64(r, 4);
    resource_at(r, 5, &j->res);
    return done(r);
}

static int read_chunk(struct hl_row *r, void *item)
{
    struct hl_text_chunk *c = item;
    c->index = col_i64(r, 0);
    c->offset = col_i64(r, 1);
    c->text = col_dup(r, 2, &c->len);
    if (!c->text)
        r->oom = 1;
    return done(r);
}

static int read_int(struct hl_row *r, void *item)
{
    *(int64_t *)item = col_i64(r, 0);
    return HL_OK;
}

static int read_prune(struct hl_row *r, void *item)
{
    struct hl_prune_row *p = item;
    p->id = col_i64(r, 0);
    p->created_at = col_i64(r, 1);
    p->owed = col_i64(r, 2) != 0;
    return HL_OK;
}

static int read_pair(struct hl_row *r, void *item)
{
    int64_t *v = item;
    v[0] = col_i64(r, 0);
    v[1] = col_i64(r, 1);
    return HL_OK;
}

static int read_str(struct hl_row *r, void *item)
{
    char **s = item;
    *s = col_dup(r, 0, NULL);
    if (!*s)
        r->oom = 1;
    return done(r);
}

static void clear_webhook(void *item)
{
    hl_webhook_clear(item);
}

static void clear_resource(void *item)
{
    hl_resource_clear(item);
}

static void clear_event(void *item)
{
    hl_event_clear(item);
}

static void clear_idem_hit(void *item)
{
    struct hl_idem_hit *h = item;
    free(h->response);
    h->response = NULL;
}

static void clear_job(void *item)
{
    hl_job_clear(item);
}

static void clear_delivery(void *item)
{
    hl_delivery_clear(item);
}

static void clear_attempt(void *item)
{
    struct hl_attempt_rec *a = item;
    free(a->error);
    free(a->response);
    memset(a, 0, sizeof(*a));
}

static void clear_ingest(void *item)
{
    hl_ingest_job_clear(item);
}

static void clear_chunk(void *item)
{
    struct hl_text_chunk *c = item;
    free((char *)c->text);
    memset(c, 0, sizeof(*c));
}

static void clear_str(void *item)
{
    char **s = item;
    free(*s);
    *s = NULL;
}

/* ---- delivery policy (issue 19) ---- */

static int read_wh_filter(struct hl_row *r, void *item)
{
    struct hl_wh_filter *f = item;
    f->id = col_i64(r, 0);
    f->filter = col_dup(r, 1, &f->len);
    f->deferring = col_i64(r, 2) != 0;
    if (!f->filter)
        r->oom = 1; /* the query takes non-NULL filters only */
    return done(r);
}

static int read_deferring(struct hl_row *r, void *item)
{
    struct hl_deferring *d = item;
    d->id = col_i64(r, 0);
    d->active = col_i64(r, 1) != 0;
    d->deleted_at = col_i64(r, 2);
    d->owed = col_i64(r, 3);
    d->owed_after = col_i64(r, 4);
    d->pending = col_i64(r, 5);
    return done(r);
}

static void clear_wh_filter(void *item)
{
    struct hl_wh_filter *f = item;
    free(f->filter);
    f->filter = NULL;
}

const struct hl_reader hl_read_app = {sizeof(struct hl_app), read_app, NULL};
const struct hl_reader hl_read_key = {sizeof(struct hl_api_key), read_key, NULL};
const struct hl_reader hl_read_key_hit = {sizeof(struct hl_key_hit), read_key_hit, NULL};
const struct hl_reader hl_read_webhook = {sizeof(struct hl_webhook), read_webhook, clear_webhook};
const struct hl_reader hl_read_resource = {sizeof(struct hl_resource), read_resource,
                                           clear_resource};
const struct hl_reader hl_read_event = {sizeof(struct hl_event), read_event, clear_event};
const struct hl_reader hl_read_idem_hit = {sizeof(struct hl_idem_hit), read_idem_hit,
                                           clear_idem_hit};
const struct hl_reader hl_read_job = {sizeof(struct hl_job), read_job, clear_job};
const struct hl_reader hl_read_delivery = {sizeof(struct hl_delivery), read_delivery,
                                           clear_delivery};
const struct hl_reader hl_read_attempt = {sizeof(struct hl_attempt_rec), read_attempt,
                                          clear_attempt};
const struct hl_reader hl_read_wh_stats = {sizeof(struct hl_webhook_stats), read_wh_stats, NULL};
const struct hl_reader hl_read_gauge = {sizeof(struct hl_gauge_row), read_gauge, NULL};
const struct hl_reader hl_read_ingest = {sizeof(struct hl_ingest_job), read_ingest, clear_ingest};
const struct hl_reader hl_read_chunk = {sizeof(struct hl_text_chunk), read_chunk, clear_chunk};
const struct hl_reader hl_read_series = {sizeof(struct hl_series_point), read_series, NULL};
const struct hl_reader hl_read_key32 = {sizeof(struct hl_key32), read_key32, NULL};
const struct hl_reader hl_read_int = {sizeof(int64_t), read_int, NULL};
const struct hl_reader hl_read_str = {sizeof(char *), read_str, clear_str};
const struct hl_reader hl_read_prune = {sizeof(struct hl_prune_row), read_prune, NULL};
const struct hl_reader hl_read_pair = {2 * sizeof(int64_t), read_pair, NULL};
const struct hl_reader hl_read_filter = {sizeof(struct hl_wh_filter), read_wh_filter,
                                         clear_wh_filter};
const struct hl_reader hl_read_deferring = {sizeof(struct hl_deferring), read_deferring, NULL};

/* ---- where rows go ---- */

/* Makes room for one more item in the array. */
static int grow(struct hl_rows *rows)
{
    if (rows->n < rows->cap)
        return HL_OK;
    size_t sz = rows->rd->size;
    size_t cap = rows->cap ? rows->cap * 2 : 16;
    void *p = realloc(rows->arr, cap * sz);
    if (!p)
        return HL_ENOMEM;
    memset((char *)p + rows->cap * sz, 0, (cap - rows->cap) * sz);
    rows->arr = p;
    rows->cap = cap;
    return HL_OK;
}

int hl_rows_put(struct hl_rows *rows, struct hl_row *r)
{
    const struct hl_reader *rd = rows->rd;
    if (!rd || (rows->one && rows->n > 0)) {
        rows->n++;
        return HL_OK;
    }
    if (!rows->one && grow(rows))
        return HL_ENOMEM;
    void *item = rows->one ? rows->one : (char *)rows->arr + rows->n * rd->size;
    memset(item, 0, rd->size);
    r->oom = 0;
    int rc = rd->read(r, item);
    if (rc) {
        /* What the reader did allocate goes now: the row is not kept. */
        if (rd->clear)
            rd->clear(item);
        return rc;
    }
    rows->n++;
    return HL_OK;
}

void hl_rows_clear(struct hl_rows *rows)
{
    const struct hl_reader *rd = rows->rd;
    if (rd && rd->clear) {
        if (rows->one && rows->n > 0)
            rd->clear(rows->one);
        for (size_t i = 0; !rows->one && i < rows->n; i++)
            rd->clear((char *)rows->arr + i * rd->size);
    }
    free(rows->arr);
    rows->arr = NULL;
    rows->n = rows->cap = 0;
}
