#include "ingest/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "common/thread.h"
#include "events/envelope.h"
#include "events/timestamp.h"
#include "ingest/chunk.h"
#include "ingest/extract.h"

/* One worker thread, and the claim it holds for the lease keeper. */
struct worker {
    struct hl_ingest *w;
    pthread_t thread;
    char file_uid[HL_ID_MAX]; /* "" when it holds none; under hl_ingest.mu */
    int64_t attempts;
    int lost; /* the keeper found the claim gone (file deleted, or taken over); under mu */
};

struct hl_ingest {
    struct hl_store *st;
    struct hl_ingest_config cfg;
    struct worker *workers;
    size_t nworkers; /* started */
    pthread_t keeper;
    int keeper_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    uint64_t wakes;   /* uploads seen */
    int stop_pipe[2]; /* written at stop, never read: readable from then on, for the helpers */
};

/* Sets fields on the file's stored object (they exist already, so the key order holds), commits
 * it with its contextfile.updated event, and refreshes j->res. chunks are stored and the job
 * finished when done. Retries when the file was changed meanwhile. */
static int update_file(struct hl_ingest *w, struct hl_ingest_job *j, json_t *fields, int done,
                       const struct hl_text_chunk *chunks, size_t nchunks)
{
    for (int tries = 0; tries < 5; tries++) {
        char err[128];
        json_t *obj = hl_json_parse(j->res.body, j->res.body_len, err, sizeof(err));
        if (!obj)
            return HL_EPARSE;
        int64_t now = hl_now_ms();
        json_object_update_existing(obj, fields);
        json_object_set_new(obj, "updatedAt", hl_json_time(now));
        struct hl_buf b;
        hl_buf_init(&b, 1u << 22);
        int rc = hl_json_write(&b, obj);
        json_decref(obj);
        if (rc) {
            hl_buf_free(&b);
            return rc;
        }
        struct hl_resource r = j->res;
        r.body = b.p;
        r.body_len = b.len;
        r.updated_at = now;
        struct hl_event ev;
        rc = hl_event_make(j->app_id, j->app_uid, HL_EV_CONTEXTFILE_UPDATED, r.tenant, r.uid,
                           r.body, r.body_len, now, 0, &ev);
        if (rc) {
            hl_buf_free(&b);
            return rc;
        }
        struct hl_change ch = {.op = HL_OP_UPDATE,
                               .res = &r,
                               .expect_version = j->res.version,
                               .ev = &ev,
                               .chunks = chunks,
                               .nchunks = nchunks,
                               .done_file = done};
        rc = hl_store_commit(w->st, &ch, 1, NULL, NULL);
        hl_event_clear(&ev);
        if (rc == HL_OK) {
            free(j->res.body);
            j->res.body = hl_buf_steal(&b);
            j->res.body_len = r.body_len;
            j->res.version++;
            return HL_OK;
        }
        hl_buf_free(&b);
        if (rc != HL_ECONFLICT)
            return rc;
        /* Someone changed the file (its name, say) meanwhile: read it again. */
        struct hl_resource fresh;
        rc = hl_store_resource_get(w->st, j->app_id, HL_ENT_CONTEXTFILE, j->file_uid, &fresh);
        if (rc)
            return rc; /* deleted meanwhile: nothing left to report */
        hl_resource_clear(&j->res);
        j->res = fresh;
    }
    return HL_ECONFLICT;
}

/* Commits the outcome of an extraction: the passages and "completed", or "failed" with why. */
static void finish(struct hl_ingest *w, struct hl_ingest_job *j, int rc, const struct hl_extract *x,
                   char *why, size_t whylen)
{
    struct hl_chunks ch = {0};
    struct hl_text_chunk *tc = NULL;
    if (rc == HL_OK &&
        (rc = hl_chunk_text(x->text, x->len, w->cfg.chunk_size, w->cfg.overlap, &ch)))
        snprintf(why, whylen, "the text could not be split into passages: %s", hl_strerror(rc));
    if (rc == HL_OK && ch.n && !(tc = calloc(ch.n, sizeof(*tc)))) {
        rc = HL_ENOMEM;
        snprintf(why, whylen, "out of memory");
    }
    for (size_t i = 0; tc && i < ch.n; i++)
        tc[i] = (struct hl_text_chunk){.index = (int64_t)ch.items[i].index,
                                       .offset = (int64_t)ch.items[i].offset,
                                       .text = x->text + ch.items[i].offset,
                                       .len = ch.items[i].len};
    int64_t now = hl_now_ms();
    json_t *f;
    if (rc == HL_OK) {
        f = json_pack("{s:s,s:n,s:o,s:o,s:I,s:I}", "processingStatus", "completed",
                      "processingError", "processingCompletedAt", hl_json_time(now), "pageCount",
                      x->kind == HL_EXTRACT_PDF ? json_integer((json_int_t)x->page_count)
                                                : json_null(),
                      "wordCount", (json_int_t)x->word_count, "chunkCount", (json_int_t)ch.n);
        rc = update_file(w, j, f, 1, tc, ch.n);
        hl_info("ingest: %s completed: %s, %zu words, %zu passages", j->file_uid,
                hl_extract_kind_name(x->kind), x->word_count, ch.n);
    } else {
        if (!why[0])
            snprintf(why, whylen, "%s", hl_strerror(rc));
        f = json_pack("{s:s,s:s,s:o}", "processingStatus", "failed", "processingError", why,
                      "processingCompletedAt", hl_json_time(now));
        rc = update_file(w, j, f, 1, NULL, 0);
        hl_info("ingest: %s failed: %s", j->file_uid, why);
    }
    json_decref(f);
    if (rc)
        hl_warn("ingest: %s: could not record the outcome: %s", j->file_uid, hl_strerror(rc));
    free(tc);
    hl_chunks_free(&ch);
}

/* Gives the file back to the queue; refund: the attempt does not count. */
static void give_back(struct hl_ingest *w, const struct hl_ingest_job *j, int refund)
{
    int rc = hl_store_ingest_release(w->st, j->file_uid, j->attempts, refund);
    if (rc && rc != HL_ENOTFOUND)
        hl_warn("ingest: %s: could not give the file back: %s (it is claimed again when its "
                "lease lapses)",
                j->file_uid, hl_strerror(rc));
}

/* Stops the extraction (a helper watch tick) once the lease keeper found the claim gone. */
static int claim_lost(void *arg)
{
    struct worker *k = arg;
    pthread_mutex_lock(&k->w->mu);
    int lost = k->lost;
    pthread_mutex_unlock(&k->w->mu);
    return lost;
}

static void process(struct worker *k, struct hl_ingest_job *j)
{
    struct hl_ingest *w = k->w;
    struct hl_extract x = {0};
    char why[768] = "";
    if (j->attempts > HL_INGEST_MAX_ATTEMPTS) {
        snprintf(why, sizeof(why),
                 "processing was cut short %d times (the server, or its extraction process, "
                 "died while extracting the file), so it is not tried again: upload the file "
                 "again to retry",
                 HL_INGEST_MAX_ATTEMPTS);
        finish(w, j, HL_EIO, &x, why, sizeof(why));
        return;
    }
    json_t *f =
        json_pack("{s:s,s:n,s:o,s:n}", "processingStatus", "processing", "processingError",
                  "processingStartedAt", hl_json_time(hl_now_ms()), "processingCompletedAt");
    int rc = update_file(w, j, f, 0, NULL, 0);
    json_decref(f);
    if (rc) {
        hl_warn("ingest: %s: could not mark processing: %s", j->file_uid, hl_strerror(rc));
        return;
    }
    json_t *src = hl_json_parse(j->res.body, j->res.body_len, NULL, 0);
    struct hl_helper_watch watch = {w->stop_pipe[0], 1000, claim_lost, k};
    enum hl_helper_end end;
    rc = hl_helper_extract(
        &w->cfg.limits, j->path, json_string_value(json_object_get(src, "contentType")),
        json_string_value(json_object_get(src, "fileName")), &watch, &x, &end, why, sizeof(why));
    json_decref(src);
    if (end == HL_HELPER_STOPPED) {
        give_back(w, j, 1);
    } else if (end == HL_HELPER_CRASHED && j->attempts < HL_INGEST_MAX_ATTEMPTS) {
        hl_warn("ingest: %s: %s; trying once more", j->file_uid, why);
        give_back(w, j, 0);
    } else {
        if (end == HL_HELPER_CRASHED) {
            char first[256];
            snprintf(first, sizeof(first), "%.200s", why);
            snprintf(why, sizeof(why),
                     "the extraction failed %d times, so it is not tried again (upload the file "
                     "again to retry): %s",
                     HL_INGEST_MAX_ATTEMPTS, first);
        }
        finish(w, j, rc, &x, why, sizeof(why));
    }
    hl_extract_free(&x);
}

/* Marks what worker k holds (j NULL: nothing), for the lease keeper. */
static void hold(struct worker *k, const struct hl_ingest_job *j)
{
    pthread_mutex_lock(&k->w->mu);
    snprintf(k->file_uid, sizeof(k->file_uid), "%s", j ? j->file_uid : "");
    k->attempts = j ? j->attempts : 0;
    k->lost = 0;
    pthread_mutex_unlock(&k->w->mu);
}

static void *run(void *arg)
{
    struct worker *k = arg;
    struct hl_ingest *w = k->w;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        uint64_t seen = w->wakes;
        int stop = w->stop;
        pthread_mutex_unlock(&w->mu);
        if (stop)
            break;
        struct hl_ingest_job j;
        int64_t now = hl_now_ms();
        int rc = hl_store_ingest_claim(w->st, now, now + w->cfg.lease_ms, &j);
        if (rc == HL_OK) {
            hold(k, &j);
            process(k, &j);
            hold(k, NULL);
            hl_ingest_job_clear(&j);
            continue;
        }
        if (rc != HL_ENOTFOUND)
            hl_warn("ingest: claim failed: %s", hl_strerror(rc));
        /* Nothing to do: sleep until an upload wakes us, or a while (leases lapse, other
         * nodes' uploads). */
        pthread_mutex_lock(&w->mu);
        if (w->wakes == seen && !w->stop) {
            struct timespec ts = hl_mono_ts(hl_mono_ms() + 1000);
            pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        }
        pthread_mutex_unlock(&w->mu);
    }
    return NULL;
}

/* The lease keeper: renews the claims the workers hold every third of the lease, whatever they
 * are doing (extracting, or committing thousands of passages), so that a claim lapses only when
 * this node is gone; a claim found gone is marked lost, which stops its extraction. */
static void *keep_leases(void *arg)
{
    struct hl_ingest *w = arg;
    struct worker *held = calloc(w->nworkers, sizeof(*held));
    pthread_mutex_lock(&w->mu);
    while (held && !w->stop) {
        struct timespec ts = hl_mono_ts(hl_mono_ms() + w->cfg.lease_ms / 3);
        while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &ts) != ETIMEDOUT)
            ;
        memcpy(held, w->workers, w->nworkers * sizeof(*held));
        pthread_mutex_unlock(&w->mu);
        int64_t until = hl_now_ms() + w->cfg.lease_ms;
        for (size_t i = 0; i < w->nworkers; i++) {
            int rc = held[i].file_uid[0]
                         ? hl_store_ingest_renew(w->st, held[i].file_uid, held[i].attempts, until)
                         : HL_OK;
            if (rc && rc != HL_ENOTFOUND)
                hl_warn("ingest: %s: could not renew the lease: %s", held[i].file_uid,
                        hl_strerror(rc));
            held[i].lost = rc == HL_ENOTFOUND;
        }
        pthread_mutex_lock(&w->mu);
        /* finished meanwhile, or gone: the worker still holding that claim stops */
        for (size_t i = 0; i < w->nworkers; i++)
            if (held[i].lost && w->workers[i].attempts == held[i].attempts &&
                strcmp(w->workers[i].file_uid, held[i].file_uid) == 0)
                w->workers[i].lost = 1;
    }
    pthread_mutex_unlock(&w->mu);
    free(held);
    return NULL;
}

int hl_ingest_start(struct hl_store *st, const struct hl_ingest_config *c, struct hl_ingest **out)
{
    *out = NULL;
    if (c->chunk_size == 0 || c->overlap >= c->chunk_size || c->workers == 0)
        return HL_EINVAL;
    struct hl_ingest *w = calloc(1, sizeof(*w));
    if (!w)
        return HL_ENOMEM;
    w->st = st;
    w->cfg = *c;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &attr);
    pthread_condattr_destroy(&attr);
    w->workers = calloc(c->workers, sizeof(*w->workers));
    if (!w->workers || pipe2(w->stop_pipe, O_CLOEXEC) != 0) {
        w->stop_pipe[0] = w->stop_pipe[1] = -1;
        hl_ingest_stop(w);
        return HL_ENOMEM;
    }
    for (; w->nworkers < c->workers; w->nworkers++) {
        struct worker *k = &w->workers[w->nworkers];
        k->w = w;
        if (hl_thread_start(&k->thread, run, k, "hl-ingest") != 0) {
            hl_ingest_stop(w);
            return HL_ENOMEM;
        }
    }
    if (hl_thread_start(&w->keeper, keep_leases, w, "hl-ingest-lease") != 0) {
        hl_ingest_stop(w);
        return HL_ENOMEM;
    }
    w->keeper_started = 1;
    *out = w;
    return HL_OK;
}

void hl_ingest_wake(struct hl_ingest *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->wakes++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void hl_ingest_stop(struct hl_ingest *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->stop_pipe[1] >= 0) {
        ssize_t n;
        do
            n = write(w->stop_pipe[1], "x", 1);
        while (n < 0 && errno == EINTR);
    }
    for (size_t i = 0; i < w->nworkers; i++)
        pthread_join(w->workers[i].thread, NULL);
    if (w->keeper_started)
        pthread_join(w->keeper, NULL);
    for (int i = 0; i < 2; i++)
        if (w->stop_pipe[i] >= 0)
            close(w->stop_pipe[i]);
    free(w->workers);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
