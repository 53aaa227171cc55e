/* Operational events (issue 21; the contract is in store.h): written by the record transaction
 * and the silence sweep, beside the change of state that causes them, on both backends. */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/events.h"
#include "store/sql.h"

/* Most webhooks one silence sweep alerts; the next sweep takes the rest. */
#define SILENT_BATCH 64

static int run(struct hl_sess *s, int q, const struct hl_arg *a, size_t n, struct hl_rows *rows)
{
    return s->st->be->run(s, q, a, n, rows);
}

/* One integer read in the transaction (0 when no row). */
static int read_int(struct hl_sess *s, int q, const struct hl_arg *a, size_t n, int64_t *out)
{
    *out = 0;
    struct hl_rows rows = {.rd = &hl_read_int, .one = out};
    return run(s, q, a, n, &rows);
}

/* The webhook f->webhook describes, with its app's uid (app_uid, HL_ID_MAX bytes), when it is an
 * ordinary one and some operational webhook wants events of type; *wanted says whether. */
static int subject(struct hl_sess *s, int64_t webhook_id, int type, struct hl_webhook *w,
                   char *app_uid, int *wanted)
{
    *wanted = 0;
    if (!s->st->op_event)
        return HL_OK;
    struct hl_arg a[] = {hl_arg_int(webhook_id)};
    struct hl_rows rows = {.rd = &hl_read_webhook, .one = w};
    int rc = run(s, HL_Q_WH_BY_ID, a, HL_NARGS(a), &rows);
    if (rc || rows.n == 0 || w->kind != HL_WK_ORDINARY)
        return rc;
    int64_t n = 0;
    struct hl_arg b[] = {hl_arg_int(w->app_id), hl_arg_int((int64_t)1 << type),
                         hl_arg_text(w->url)};
    rc = read_int(s, HL_Q_OP_COUNT, b, HL_NARGS(b), &n);
    if (rc || n == 0)
        return rc;
    char *uid = NULL;
    struct hl_rows app = {.rd = &hl_read_str, .one = &uid};
    struct hl_arg c[] = {hl_arg_int(w->app_id)};
    rc = run(s, HL_Q_APP_UID, c, HL_NARGS(c), &app);
    if (rc == HL_OK && uid) {
        size_t len = strlen(uid);
        if (len < HL_ID_MAX) {
            memcpy(app_uid, uid, len + 1);
            *wanted = 1;
        }
    }
    free(uid);
    return rc;
}

/* Writes the event of f (its webhook an ordinary one that some operational webhook wants it)
 * and its deliveries. */
static int emit(struct hl_sess *s, const struct hl_op_facts *f, int64_t now)
{
    struct hl_event ev = {0};
    int rc = s->st->op_event(f, &ev);
    if (rc)
        return rc;
    ev.app_id = f->webhook->app_id;
    ev.type = f->type;
    struct hl_arg a[HL_EVENT_ARGS];
    hl_event_args(&ev, a);
    int64_t id = 0;
    struct hl_rows row = {.rd = &hl_read_int, .one = &id};
    rc = run(s, HL_Q_OP_EVENT, a, HL_EVENT_ARGS, &row);
    struct hl_rows made = {0};
    if (rc == HL_OK) {
        struct hl_arg b[] = {hl_arg_int(id),
                             hl_arg_int(now),
                             hl_arg_int(ev.app_id),
                             hl_arg_int((int64_t)1 << f->type),
                             hl_arg_text(f->webhook->url),
                             hl_arg_int(f->type)};
        rc = run(s, HL_Q_OP_FANOUT, b, HL_NARGS(b), &made);
    }
    if (rc == HL_OK && made.changed) {
        __atomic_add_fetch(&s->st->op_made, (uint64_t)made.changed, __ATOMIC_RELAXED);
        if (s->st->be->wake_all)
            rc = s->st->be->wake_all(s);
    }
    hl_event_clear(&ev);
    return rc;
}

/* The pending deliveries of a webhook. */
static int waiting(struct hl_sess *s, int64_t webhook_id, int64_t *n)
{
    struct hl_arg a[] = {hl_arg_int(webhook_id)};
    return read_int(s, HL_Q_WAITING, a, HL_NARGS(a), n);
}

/* Fills the facts of an event that need its webhook (f->webhook), before it is written.
 * Returns 0, or HL_ENOTFOUND to write nothing. */
typedef int (*more_fn)(struct hl_sess *s, struct hl_op_facts *f, void *arg);

/* Writes the event of f (its type, time and the facts the caller knows) about webhook_id, with
 * the webhook, its app's uid, its waiting deliveries and what more adds (NULL: nothing), when
 * the webhook is an ordinary one and some operational webhook wants the event. */
static int alert(struct hl_sess *s, int64_t webhook_id, struct hl_op_facts *f, more_fn more,
                 void *arg, int64_t now)
{
    struct hl_webhook w = {0};
    char app_uid[HL_ID_MAX];
    int wanted;
    int rc = subject(s, webhook_id, f->type, &w, app_uid, &wanted);
    f->app_uid = app_uid;
    f->webhook = &w;
    if (rc == HL_OK && wanted)
        rc = waiting(s, w.id, &f->waiting);
    if (rc == HL_OK && wanted && more)
        rc = more(s, f, arg);
    if (rc == HL_OK && wanted)
        rc = emit(s, f, now);
    hl_webhook_clear(&w);
    return rc == HL_ENOTFOUND ? HL_OK : rc;
}

int hl_sql_alert_mark(struct hl_sess *s, const struct hl_attempt *at, struct hl_alert_mark *m)
{
    memset(m, 0, sizeof(*m));
    if (at->outcome == HL_OUT_GONE)
        return HL_OK; /* endpoint.disabled says it all */
    if (at->outcome != HL_OUT_SUCCESS) {
        struct hl_arg a[] = {hl_arg_int(at->webhook_id), hl_arg_int(at->started_at)};
        struct hl_rows rows = {0};
        int rc = run(s, HL_Q_ALERT_FAILING, a, HL_NARGS(a), &rows);
        if (rc == HL_OK && rows.changed)
            m->what = HL_OPEV_ENDPOINT_FAILING;
        return rc;
    }
    struct hl_arg a[] = {hl_arg_int(at->webhook_id)};
    struct hl_rows rows = {.rd = &hl_read_int, .one = &m->since};
    int rc = run(s, HL_Q_ALERT_RECOVERED, a, HL_NARGS(a), &rows);
    if (rc == HL_OK && rows.n)
        m->what = HL_OPEV_ENDPOINT_RECOVERED;
    return rc;
}

/* An attempt among the batch it was recorded with. */
struct batch_at {
    const struct hl_attempt *a;
    size_t n, i;
};

/* endpoint.recovered: of the batch, the deliveries of the webhook that succeeded and had failed
 * before. */
static int more_recovered(struct hl_sess *s, struct hl_op_facts *f, void *arg)
{
    const struct batch_at *b = arg;
    int64_t *ids = calloc(b->n, sizeof(*ids));
    if (!ids)
        return HL_ENOMEM;
    size_t k = 0;
    for (size_t j = 0; j < b->n; j++)
        if (b->a[j].webhook_id == b->a[b->i].webhook_id && b->a[j].outcome == HL_OUT_SUCCESS)
            ids[k++] = b->a[j].delivery_id;
    struct hl_arg q[] = {hl_arg_ids(ids, k)};
    int rc = read_int(s, HL_Q_RECOVERED_COUNT, q, HL_NARGS(q), &f->recovered);
    free(ids);
    return rc;
}

int hl_sql_alert_emit(struct hl_sess *s, const struct hl_attempt *a, size_t n, size_t i,
                      const struct hl_alert_mark *m, int64_t now)
{
    if (!m->what)
        return HL_OK;
    struct hl_op_facts f = {.type = m->what,
                            .at = a[i].started_at,
                            .error = a[i].error,
                            .status_code = a[i].status_code,
                            .since = m->since};
    struct batch_at b = {a, n, i};
    return alert(s, a[i].webhook_id, &f,
                 m->what == HL_OPEV_ENDPOINT_RECOVERED ? more_recovered : NULL, &b, now);
}

int hl_sql_alert_disabled(struct hl_sess *s, int64_t webhook_id, const char *reason, int64_t now)
{
    struct hl_op_facts f = {.type = HL_OPEV_ENDPOINT_DISABLED, .at = now, .reason = reason};
    return alert(s, webhook_id, &f, NULL, NULL, now);
}

/* delivery.exhausted: the delivery (arg: the struct hl_delivery to fill). */
static int more_exhausted(struct hl_sess *s, struct hl_op_facts *f, void *arg)
{
    struct hl_delivery *d = arg;
    struct hl_arg a[] = {hl_arg_int(d->id), hl_arg_int(f->webhook->app_id)};
    struct hl_rows rows = {.rd = &hl_read_delivery, .one = d};
    int rc = run(s, HL_Q_DL_GET, a, HL_NARGS(a), &rows);
    f->delivery = d;
    return rc == HL_OK && rows.n == 0 ? HL_ENOTFOUND : rc;
}

int hl_sql_alert_exhausted(struct hl_sess *s, const struct hl_attempt *at, int64_t now)
{
    struct hl_delivery d = {.id = at->delivery_id};
    struct hl_op_facts f = {.type = HL_OPEV_DELIVERY_EXHAUSTED,
                            .at = at->started_at,
                            .error = at->error,
                            .status_code = at->status_code};
    int rc = alert(s, at->webhook_id, &f, more_exhausted, &d, now);
    hl_delivery_clear(&d);
    return rc;
}

/* ---- silence ---- */

/* endpoint.silent: quiet since the last success, or the creation when none came. */
static int more_silent(struct hl_sess *s, struct hl_op_facts *f, void *arg)
{
    (void)s;
    (void)arg;
    const struct hl_webhook *w = f->webhook;
    f->since = w->last_success_at ? w->last_success_at : w->created_at;
    return HL_OK;
}

/* Claims webhook id's silence alert at now and writes its endpoint.silent; *fired when it did. */
static int silent_one(struct hl_sess *s, int64_t id, int64_t now, int *fired)
{
    *fired = 0;
    struct hl_arg a[] = {hl_arg_int(id), hl_arg_int(now)};
    struct hl_rows rows = {0};
    int rc = run(s, HL_Q_SILENT_CLAIM, a, HL_NARGS(a), &rows);
    if (rc || rows.changed == 0)
        return rc; /* another node's sweep has it */
    *fired = 1;
    struct hl_op_facts f = {.type = HL_OPEV_ENDPOINT_SILENT, .at = now};
    return alert(s, id, &f, more_silent, NULL, now);
}

int hl_store_silence_sweep(struct hl_store *st, int64_t now, int64_t *fired)
{
    int64_t n_fired = 0;
    uint64_t made = __atomic_load_n(&st->op_made, __ATOMIC_RELAXED);
    struct hl_sess s;
    int rc = st->be->open(st, HL_SESS_TX, &s);
    if (rc)
        return rc;
    rc = run(&s, HL_Q_SILENT_RESET, NULL, 0, NULL);
    struct hl_arg a[] = {hl_arg_int(now), hl_arg_int(SILENT_BATCH)};
    struct hl_rows due = {.rd = &hl_read_int};
    if (rc == HL_OK)
        rc = run(&s, HL_Q_SILENT_DUE, a, HL_NARGS(a), &due);
    const int64_t *ids = due.arr;
    for (size_t i = 0; i < due.n && rc == HL_OK; i++) {
        int one = 0;
        rc = silent_one(&s, ids[i], now, &one);
        n_fired += one;
    }
    hl_rows_clear(&due);
    rc = st->be->close(&s, rc);
    if (rc == HL_OK && __atomic_load_n(&st->op_made, __ATOMIC_RELAXED) != made)
        hl_store_notify(st);
    if (fired)
        *fired = rc == HL_OK ? n_fired : 0;
    return rc;
}

void hl_store_on_op_event(struct hl_store *st, hl_op_event_fn fn)
{
    st->op_event = fn;
}
