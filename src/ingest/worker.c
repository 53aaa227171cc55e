#include "ingest/worker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "events/envelope.h"
#include "events/timestamp.h"
#include "ingest/chunk.h"
#include "ingest/extract.h"

struct hl_ingest {
    struct hl_store *st;
    struct hl_ingest_config cfg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    int woken;
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

static void process(struct hl_ingest *w, struct hl_ingest_job *j)
{
    int64_t started = hl_now_ms();
    json_t *f = json_pack("{s:s,s:n,s:o,s:n}", "processingStatus", "processing", "processingError",
                          "processingStartedAt", hl_json_time(started), "processingCompletedAt");
    int rc = update_file(w, j, f, 0, NULL, 0);
    json_decref(f);
    if (rc) {
        hl_warn("ingest: %s: could not mark processing: %s", j->file_uid, hl_strerror(rc));
        return;
    }
    json_t *src = hl_json_parse(j->res.body, j->res.body_len, NULL, 0);
    const char *ctype = json_string_value(json_object_get(src, "contentType"));
    const char *fname = json_string_value(json_object_get(src, "fileName"));
    struct hl_extract x = {.max_input = w->cfg.max_input};
    struct hl_chunks ch = {0};
    struct hl_text_chunk *tc = NULL;
    char why[512] = "";
    rc = hl_extract_file(j->path, ctype, fname, &x, why, sizeof(why));
    json_decref(src);
    if (rc == HL_OK) {
        rc = hl_chunk_text(x.text, x.len, w->cfg.chunk_size, w->cfg.overlap, &ch);
        if (rc)
            snprintf(why, sizeof(why), "the text could not be split into passages: %s",
                     hl_strerror(rc));
    }
    if (rc == HL_OK && ch.n) {
        tc = calloc(ch.n, sizeof(*tc));
        if (!tc) {
            rc = HL_ENOMEM;
            snprintf(why, sizeof(why), "out of memory");
        }
        for (size_t i = 0; tc && i < ch.n; i++)
            tc[i] = (struct hl_text_chunk){.index = (int64_t)ch.items[i].index,
                                           .offset = (int64_t)ch.items[i].offset,
                                           .text = x.text + ch.items[i].offset,
                                           .len = ch.items[i].len};
    }
    int64_t now = hl_now_ms();
    if (rc == HL_OK) {
        f = json_pack("{s:s,s:n,s:o,s:o,s:I,s:I}", "processingStatus", "completed",
                      "processingError", "processingCompletedAt", hl_json_time(now), "pageCount",
                      x.kind == HL_EXTRACT_PDF ? json_integer((json_int_t)x.page_count)
                                               : json_null(),
                      "wordCount", (json_int_t)x.word_count, "chunkCount", (json_int_t)ch.n);
        rc = update_file(w, j, f, 1, tc, ch.n);
        hl_info("ingest: %s completed: %s, %zu words, %zu passages", j->file_uid,
                hl_extract_kind_name(x.kind), x.word_count, ch.n);
    } else {
        if (!why[0])
            snprintf(why, sizeof(why), "%s", hl_strerror(rc));
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
    hl_extract_free(&x);
}

static int stopping(struct hl_ingest *w)
{
    pthread_mutex_lock(&w->mu);
    int s = w->stop;
    pthread_mutex_unlock(&w->mu);
    return s;
}

static void *run(void *arg)
{
    struct hl_ingest *w = arg;
    while (!stopping(w)) {
        struct hl_ingest_job j;
        int64_t now = hl_now_ms();
        int rc = hl_store_ingest_claim(w->st, now, now + w->cfg.lease_ms, &j);
        if (rc == HL_OK) {
            process(w, &j);
            hl_ingest_job_clear(&j);
            continue;
        }
        if (rc != HL_ENOTFOUND)
            hl_warn("ingest: claim failed: %s", hl_strerror(rc));
        /* Nothing to do: sleep until an upload wakes us, or a while (leases lapse, other
         * nodes' uploads). */
        pthread_mutex_lock(&w->mu);
        if (!w->woken && !w->stop) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        }
        w->woken = 0;
        pthread_mutex_unlock(&w->mu);
    }
    return NULL;
}

int hl_ingest_start(struct hl_store *st, const struct hl_ingest_config *c, struct hl_ingest **out)
{
    *out = NULL;
    if (c->chunk_size == 0 || c->overlap >= c->chunk_size)
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
    if (pthread_create(&w->thread, NULL, run, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return HL_ENOMEM;
    }
    *out = w;
    return HL_OK;
}

void hl_ingest_wake(struct hl_ingest *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->woken = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void hl_ingest_stop(struct hl_ingest *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
