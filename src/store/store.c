#include "store/sql.h"
#include <stdio.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"

static int is_postgres(const char *url)
{
    return strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0;
}

/* The SQLite path of a url that is not PostgreSQL's. */
static const char *sqlite_path(const char *url)
{
    return strncmp(url, "sqlite:", 7) == 0 ? url + 7 : url;
}

int hl_store_open(const char *url, struct hl_store **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!url || !*url) {
        snprintf(err, errlen, "no database given");
        return HL_EINVAL;
    }
    if (is_postgres(url))
        return hl_postgres_open(url, out, err, errlen);
    return hl_sqlite_open(sqlite_path(url), out, err, errlen);
}

int hl_store_exists(const char *url, char *err, size_t errlen)
{
    if (!url || !*url) {
        snprintf(err, errlen, "no database given");
        return HL_EINVAL;
    }
    if (is_postgres(url))
        return hl_postgres_exists(url, err, errlen);
    return hl_sqlite_exists(sqlite_path(url), err, errlen);
}

void hl_store_close(struct hl_store *st)
{
    if (st)
        st->be->destroy(st);
}

int hl_store_lock(struct hl_store *st, char *err, size_t errlen)
{
    return st->be->lock(st, err, errlen);
}

/* The changes of a commit with their events' payloads packed for storage (payload.c), done
 * before the commit so that no packing happens while the writer is held. */
struct packed_changes {
    struct hl_change *ch;
    struct hl_event *ev;
    struct hl_buf *buf;
    size_t n;
};

static void packed_free(struct packed_changes *p)
{
    for (size_t i = 0; p->buf && i < p->n; i++)
        hl_buf_free(&p->buf[i]);
    free(p->buf);
    free(p->ev);
    free(p->ch);
}

static int pack_changes(const struct hl_change *ch, size_t n, struct packed_changes *p)
{
    *p = (struct packed_changes){.n = n};
    p->ch = malloc(n * sizeof(*p->ch));
    p->ev = malloc(n * sizeof(*p->ev));
    p->buf = calloc(n, sizeof(*p->buf));
    if (!p->ch || !p->ev || !p->buf)
        return HL_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        p->ch[i] = ch[i];
        if (!ch[i].ev)
            continue;
        p->ev[i] = *ch[i].ev;
        p->ch[i].ev = &p->ev[i];
        hl_buf_init(&p->buf[i], HL_PAYLOAD_MAX);
        int rc = hl_payload_pack(ch[i].ev->payload, ch[i].ev->payload_len, &p->buf[i]);
        if (rc)
            return rc;
        if (p->buf[i].len) {
            p->ev[i].payload = p->buf[i].p;
            p->ev[i].payload_len = p->buf[i].len;
        }
    }
    return HL_OK;
}

int hl_store_commit(struct hl_store *st, const struct hl_change *ch, size_t n,
                    const struct hl_idem *idem, int64_t *deliveries)
{
    if (n == 0)
        return st->be->commit(st, ch, n, idem, deliveries);
    struct packed_changes p;
    int rc = pack_changes(ch, n, &p);
    if (rc == HL_OK)
        rc = st->be->commit(st, p.ch, n, idem, deliveries);
    packed_free(&p);
    return rc;
}

/* A change set on its way through hl_store_commit_start: its packed copy lives until done. */
struct started {
    struct packed_changes p;
    hl_commit_done_fn done;
    void *arg;
};

static void started_done(void *arg, int rc, int64_t deliveries)
{
    struct started *s = arg;
    hl_commit_done_fn done = s->done;
    void *done_arg = s->arg;
    packed_free(&s->p);
    free(s);
    done(done_arg, rc, deliveries);
}

int hl_store_commit_start(struct hl_store *st, const struct hl_change *ch, size_t n,
                          const struct hl_idem *idem, hl_commit_done_fn done, void *arg)
{
    if (!st->be->commit_start) {
        int64_t made = 0;
        int rc = hl_store_commit(st, ch, n, idem, &made);
        done(arg, rc, rc ? 0 : made);
        return HL_OK;
    }
    struct started *s = calloc(1, sizeof(*s));
    if (!s)
        return HL_ENOMEM;
    s->done = done;
    s->arg = arg;
    int rc = pack_changes(ch, n, &s->p);
    if (rc == HL_OK)
        rc = st->be->commit_start(st, s->p.ch, n, idem, started_done, s);
    if (rc) {
        packed_free(&s->p);
        free(s);
    }
    return rc;
}

int hl_jobs_unpack(int rc, struct hl_job **out, size_t *n)
{
    /* Jobs come with their payloads as stored; unpacked here, with the writer let go. */
    for (size_t i = 0; rc == HL_OK && i < *n; i++) {
        struct hl_job *j = &(*out)[i];
        if (!hl_payload_packed(j->payload, j->payload_len))
            continue;
        char *p = NULL;
        size_t len = 0;
        rc = hl_payload_unpack(j->payload, j->payload_len, &p, &len);
        if (rc == HL_ESTORE)
            hl_error("store: the stored payload of event %lld is damaged", (long long)j->event_id);
        free(j->payload);
        j->payload = p;
        j->payload_len = len;
    }
    if (rc && *out) {
        for (size_t i = 0; i < *n; i++)
            hl_job_clear(&(*out)[i]);
        free(*out);
    }
    if (rc) {
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int hl_store_claim(struct hl_store *st, const struct hl_claim *c, struct hl_job **out, size_t *n)
{
    return hl_jobs_unpack(st->be->claim(st, c, out, n), out, n);
}

void hl_store_claim_hook(struct hl_store *st, const struct hl_claim_hook *h)
{
    if (st->be->claim_hook)
        st->be->claim_hook(st, h);
}

int hl_store_record(struct hl_store *st, const struct hl_attempt *a, size_t n)
{
    uint64_t made = __atomic_load_n(&st->op_made, __ATOMIC_RELAXED);
    int rc = st->be->record(st, a, n);
    /* Operational events made deliveries: the dispatchers claim them like a commit's. */
    if (rc == HL_OK && __atomic_load_n(&st->op_made, __ATOMIC_RELAXED) != made)
        hl_store_notify(st);
    return rc;
}

int hl_store_release_leases(struct hl_store *st)
{
    return st->be->release_leases(st);
}

int hl_store_ingest_claim(struct hl_store *st, int64_t now, int64_t lease_until,
                          struct hl_ingest_job *out)
{
    return st->be->ingest_claim(st, now, lease_until, out);
}

int hl_store_space(struct hl_store *st, struct hl_store_space *out)
{
    memset(out, 0, sizeof(*out));
    return st->be->space(st, out);
}

int hl_store_one_writer(struct hl_store *st)
{
    return st->be->one_writer;
}

int hl_store_release_space(struct hl_store *st, int64_t *released)
{
    *released = 0;
    return st->be->release ? st->be->release(st, released) : HL_OK;
}

int hl_store_compact(struct hl_store *st, hl_compact_progress_fn progress, void *arg, char *err,
                     size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    return st->be->compact(st, progress, arg, err, errlen);
}

void hl_store_explain(struct hl_store *st, struct hl_buf *plans)
{
    st->explain = plans;
}

void hl_store_base_init(struct hl_store *st, const struct hl_backend *be)
{
    st->be = be;
    pthread_mutex_init(&st->wake_mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&st->wake_cv, &attr);
    pthread_condattr_destroy(&attr);
    st->wake_seq = 0;
    st->on_notify = NULL;
    st->on_notify_arg = NULL;
    st->notifying = 0;
    st->explain = NULL;
    memset(st->pruned, 0, sizeof(st->pruned));
}

void hl_store_base_destroy(struct hl_store *st)
{
    pthread_cond_destroy(&st->wake_cv);
    pthread_mutex_destroy(&st->wake_mu);
}

void hl_store_notify(struct hl_store *st)
{
    pthread_mutex_lock(&st->wake_mu);
    st->wake_seq++;
    pthread_cond_broadcast(&st->wake_cv);
    void (*fn)(void *) = st->on_notify;
    void *arg = st->on_notify_arg;
    if (fn)
        st->notifying++;
    pthread_mutex_unlock(&st->wake_mu);
    if (!fn)
        return;
    /* Called without wake_mu: fn may take its own locks, whose holders read wake_seq. */
    fn(arg);
    pthread_mutex_lock(&st->wake_mu);
    if (--st->notifying == 0)
        pthread_cond_broadcast(&st->wake_cv);
    pthread_mutex_unlock(&st->wake_mu);
}

void hl_store_on_notify(struct hl_store *st, void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&st->wake_mu);
    st->on_notify = fn;
    st->on_notify_arg = arg;
    while (st->notifying > 0)
        pthread_cond_wait(&st->wake_cv, &st->wake_mu);
    pthread_mutex_unlock(&st->wake_mu);
}

uint64_t hl_store_wake_seq(struct hl_store *st)
{
    pthread_mutex_lock(&st->wake_mu);
    uint64_t s = st->wake_seq;
    pthread_mutex_unlock(&st->wake_mu);
    return s;
}

int hl_store_wait_since(struct hl_store *st, uint64_t seen, int64_t deadline_mono_ms)
{
    struct timespec ts = hl_mono_ts(deadline_mono_ms);
    pthread_mutex_lock(&st->wake_mu);
    int rc = 0;
    while (st->wake_seq == seen) {
        if (pthread_cond_timedwait(&st->wake_cv, &st->wake_mu, &ts) != 0)
            break;
    }
    rc = st->wake_seq != seen;
    pthread_mutex_unlock(&st->wake_mu);
    return rc;
}

void hl_webhook_clear(struct hl_webhook *w)
{
    free(w->url);
    free(w->description);
    free(w->disabled_reason);
    free(w->filter);
    free(w->headers);
    memset(w, 0, sizeof(*w));
}

void hl_resource_clear(struct hl_resource *r)
{
    free(r->tenant);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

void hl_event_clear(struct hl_event *e)
{
    free(e->tenant);
    free(e->payload);
    memset(e, 0, sizeof(*e));
}

void hl_job_clear(struct hl_job *j)
{
    free(j->url);
    free(j->payload);
    free(j->headers);
    memset(j, 0, sizeof(*j));
}

void hl_delivery_clear(struct hl_delivery *d)
{
    free(d->last_error);
    memset(d, 0, sizeof(*d));
}

void hl_attempts_free(struct hl_attempt_rec *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++) {
        free(a[i].error);
        free(a[i].response);
    }
    free(a);
}

void hl_ingest_job_clear(struct hl_ingest_job *j)
{
    free(j->path);
    hl_resource_clear(&j->res);
    memset(j, 0, sizeof(*j));
}

void hl_chunks_list_free(struct hl_text_chunk *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++)
        free((char *)c[i].text);
    free(c);
}
