#include "delivery/dispatcher.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/ids.h"
#include "common/log.h"
#include "crypto/sign.h"

/* One attempt in flight. */
struct xfer {
    CURL *easy;
    struct hl_job job;
    struct curl_slist *headers;
    char response[HL_RESPONSE_KEEP];
    size_t response_len;
    char retry_after[64];
    char errbuf[CURL_ERROR_SIZE];
    struct hl_target_guard guard;
    int64_t started_at;
    int64_t started_us;
    size_t idx; /* position in hl_dispatcher.active */
    struct xfer *next_free;
};

/* In-flight counts per webhook: open addressing, keys never removed while counts are > 0. */
struct slot {
    int64_t webhook_id;
    int count;
};

struct hl_dispatcher {
    struct hl_store *st;
    struct hl_dispatcher_config cfg;
    CURLM *multi;
    pthread_t thread;
    pthread_mutex_t mu; /* guards stop and stats */
    int stop;
    struct hl_dispatcher_stats stats;

    struct xfer *free_list;
    struct xfer **active; /* the transfers in flight, [0, inflight) */
    size_t inflight;
    struct hl_job *waiting; /* claimed, held back by the per-webhook cap */
    size_t nwaiting;
    struct slot *slots;
    size_t nslots;

    struct hl_attempt *done; /* results waiting to be recorded */
    char **done_errors;
    struct xfer **done_xfers;
    size_t ndone;

    uint64_t seen_seq;
    int64_t next_due;      /* wall ms of the next due delivery we know of; 0: ask the store */
    int claim_full;        /* the last claim filled its batch: more may be due */
    int64_t last_claim_ms; /* monotonic time of the last claim */
    uint32_t rng;
};

void hl_dispatcher_config_default(struct hl_dispatcher_config *c)
{
    memset(c, 0, sizeof(*c));
    hl_retry_default(&c->retry);
    c->timeout_ms = 5000;
    c->max_inflight = 256;
    c->per_host = 32;
    c->disable_after_ms = 5LL * 24 * 3600 * 1000;
    c->lease_ms = 60000;
}

static uint32_t rnd(struct hl_dispatcher *d)
{
    /* xorshift32, seeded from the CSPRNG: jitter needs spread, not secrecy. */
    uint32_t x = d->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    d->rng = x;
    return x;
}

static struct slot *slot_for(struct hl_dispatcher *d, int64_t webhook_id, int create)
{
    size_t mask = d->nslots - 1;
    size_t i = (size_t)((uint64_t)webhook_id * 0x9E3779B97F4A7C15ull >> 20) & mask;
    for (size_t k = 0; k < d->nslots; k++, i = (i + 1) & mask) {
        if (d->slots[i].webhook_id == webhook_id)
            return &d->slots[i];
        if (d->slots[i].webhook_id == 0) {
            if (!create)
                return NULL;
            d->slots[i].webhook_id = webhook_id;
            d->slots[i].count = 0;
            return &d->slots[i];
        }
    }
    return NULL;
}

/* Empties slots whose count dropped to zero: rebuild the table (it is small). */
static void slots_compact(struct hl_dispatcher *d)
{
    struct slot *old = d->slots;
    size_t n = d->nslots;
    struct slot *fresh = calloc(n, sizeof(*fresh));
    if (!fresh)
        return;
    d->slots = fresh;
    for (size_t i = 0; i < n; i++) {
        if (old[i].webhook_id && old[i].count > 0) {
            struct slot *s = slot_for(d, old[i].webhook_id, 1);
            s->count = old[i].count;
        }
    }
    free(old);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct xfer *x = userdata;
    size_t n = size * nmemb;
    size_t room = sizeof(x->response) - x->response_len;
    size_t take = n < room ? n : room;
    memcpy(x->response + x->response_len, ptr, take);
    x->response_len += take;
    return n; /* read and drop the rest: the answer's status is what counts */
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct xfer *x = userdata;
    size_t n = size * nitems;
    static const char name[] = "retry-after:";
    if (n > sizeof(name) - 1 && strncasecmp(buf, name, sizeof(name) - 1) == 0) {
        const char *v = buf + sizeof(name) - 1;
        size_t len = n - (sizeof(name) - 1);
        while (len && (*v == ' ' || *v == '\t'))
            v++, len--;
        while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
            len--;
        if (len >= sizeof(x->retry_after))
            len = sizeof(x->retry_after) - 1;
        memcpy(x->retry_after, v, len);
        x->retry_after[len] = '\0';
    }
    return n;
}

static struct xfer *xfer_get(struct hl_dispatcher *d)
{
    struct xfer *x = d->free_list;
    if (x) {
        d->free_list = x->next_free;
        curl_easy_reset(x->easy);
    } else {
        x = calloc(1, sizeof(*x));
        if (!x)
            return NULL;
        x->easy = curl_easy_init();
        if (!x->easy) {
            free(x);
            return NULL;
        }
    }
    x->headers = NULL;
    x->response_len = 0;
    x->retry_after[0] = '\0';
    x->errbuf[0] = '\0';
    x->guard.refused[0] = '\0';
    return x;
}

static void xfer_put(struct hl_dispatcher *d, struct xfer *x)
{
    curl_slist_free_all(x->headers);
    x->headers = NULL;
    hl_job_clear(&x->job);
    x->next_free = d->free_list;
    d->free_list = x;
}

static int add_header(struct curl_slist **h, const char *name, const char *value)
{
    char line[512];
    /* "Name:" with nothing after it tells libcurl to drop a header it would add itself. */
    snprintf(line, sizeof(line), *value ? "%s: %s" : "%s:%s", name, value);
    struct curl_slist *n = curl_slist_append(*h, line);
    if (!n)
        return HL_ENOMEM;
    *h = n;
    return HL_OK;
}

/* Builds the signed headers of one attempt. */
static int build_headers(struct xfer *x)
{
    struct hl_job *j = &x->job;
    char hex[65], iso[HL_ISO_MAX], ts[24];
    char sig[2 * 64 + 8];
    int rc = hl_sign_hex(j->secret, strlen(j->secret), j->payload, j->payload_len, hex);
    if (rc)
        return rc;
    int64_t ts_s = hl_now_ms() / 1000;
    snprintf(ts, sizeof(ts), "%" PRId64, ts_s);
    hl_time_iso(j->event_ts, iso);
    rc = hl_sign_std(j->secret, strlen(j->secret), j->event_uid, strlen(j->event_uid), ts_s,
                     j->payload, j->payload_len, sig, sizeof(sig));
    if (rc)
        return rc;
    char both[sizeof(sig) * 2 + 2];
    char prev_hex[65], prev_prefixed[80];
    prev_prefixed[0] = '\0';
    if (j->prev_secret[0]) {
        rc = hl_sign_hex(j->prev_secret, strlen(j->prev_secret), j->payload, j->payload_len,
                         prev_hex);
        if (rc)
            return rc;
        snprintf(prev_prefixed, sizeof(prev_prefixed), "sha256=%s", prev_hex);
        char old[sizeof(sig)];
        rc = hl_sign_std(j->prev_secret, strlen(j->prev_secret), j->event_uid, strlen(j->event_uid),
                         ts_s, j->payload, j->payload_len, old, sizeof(old));
        if (rc)
            return rc;
        snprintf(both, sizeof(both), "%s %s", sig, old);
    } else {
        snprintf(both, sizeof(both), "%s", sig);
    }
    char prefixed[80];
    snprintf(prefixed, sizeof(prefixed), "sha256=%s", hex);
    struct curl_slist **h = &x->headers;
    if (add_header(h, "Content-Type", "application/json") ||
        add_header(h, "User-Agent", "hookline/" HL_VERSION) ||
        add_header(h, "X-Webhook-Signature", prefixed) ||
        add_header(h, "X-Webhook-Event-Id", j->event_uid) ||
        add_header(h, "X-Webhook-Timestamp", iso) || add_header(h, "webhook-id", j->event_uid) ||
        add_header(h, "webhook-timestamp", ts) || add_header(h, "webhook-signature", both) ||
        add_header(h, "Expect", ""))
        return HL_ENOMEM;
    /* During a rotation the guide's header keeps one value (its verifiers compare exactly one);
     * the old secret's signature rides beside it for receivers not yet switched over. */
    if (prev_prefixed[0] && add_header(h, "X-Webhook-Signature-Previous", prev_prefixed))
        return HL_ENOMEM;
    return HL_OK;
}

/* Starts the attempt of one claimed job; on failure the job is recorded as failed now. */
static void start(struct hl_dispatcher *d, struct hl_job *job);

static void push_result(struct hl_dispatcher *d, struct xfer *x, const struct hl_attempt *a,
                        const char *error);

static void start(struct hl_dispatcher *d, struct hl_job *job)
{
    struct xfer *x = xfer_get(d);
    if (!x) {
        hl_job_clear(job);
        return; /* the lease runs out and the delivery is claimed again */
    }
    x->job = *job;
    memset(job, 0, sizeof(*job));
    x->started_at = hl_now_ms();
    x->started_us = hl_mono_us();
    CURL *e = x->easy;
    int rc = build_headers(x);
    if (rc) {
        struct hl_attempt a = {0};
        push_result(d, x, &a, "could not sign the payload");
        return;
    }
    curl_easy_setopt(e, CURLOPT_URL, x->job.url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->job.payload);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->job.payload_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)d->cfg.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)d->cfg.timeout_ms);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    /* No proxy from the environment: the address guard must see the receiver's address. */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    x->guard.allow = &d->cfg.allow;
    x->guard.enforce = d->cfg.production;
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, hl_target_opensocket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, &x->guard);
    if (curl_multi_add_handle(d->multi, e) != CURLM_OK) {
        struct hl_attempt a = {0};
        push_result(d, x, &a, "could not start the transfer");
        return;
    }
    struct slot *s = slot_for(d, x->job.webhook_id, 1);
    if (s)
        s->count++;
    x->idx = d->inflight;
    d->active[d->inflight++] = x;
}

/* Decides the outcome of a finished attempt and queues it for recording. */
static void push_result(struct hl_dispatcher *d, struct xfer *x, const struct hl_attempt *in,
                        const char *error)
{
    struct hl_attempt a = *in;
    a.delivery_id = x->job.delivery_id;
    a.webhook_id = x->job.webhook_id;
    a.started_at = x->started_at;
    a.duration_us = hl_mono_us() - x->started_us;
    a.response = x->response_len ? x->response : NULL;
    a.response_len = x->response_len;
    int attempts = x->job.attempts + 1;
    if (a.status_code >= 200 && a.status_code < 300) {
        a.outcome = HL_OUT_SUCCESS;
        error = NULL;
    } else if (a.status_code == 410) {
        a.outcome = HL_OUT_GONE;
    } else {
        int64_t delay = hl_retry_delay(&d->cfg.retry, attempts, rnd(d));
        if (delay >= 0 && (a.status_code == 429 || a.status_code == 503) && x->retry_after[0]) {
            int64_t after;
            /* Wait at least as long as the receiver asked (within bounds), never less than the
             * schedule says. */
            if (hl_retry_after(x->retry_after, strlen(x->retry_after), hl_now_ms(), &after) ==
                    HL_OK &&
                hl_retry_clamp_after(after) > delay)
                delay = hl_retry_clamp_after(after);
        }
        if (delay < 0) {
            a.outcome = HL_OUT_FAILED;
        } else {
            a.outcome = HL_OUT_RETRY;
            a.next_attempt_at = hl_now_ms() + delay;
        }
    }
    char *err = error ? strdup(error) : NULL;
    a.error = err;
    d->done[d->ndone] = a;
    d->done_errors[d->ndone] = err;
    d->done_xfers[d->ndone] = x;
    d->ndone++;

    static const char *const outcome_names[] = {"", "delivered", "will retry", "failed",
                                                "gone (webhook disabled)"};
    if (a.outcome == HL_OUT_SUCCESS ? hl_log_enabled(HL_LOG_INFO) : 1)
        hl_log(a.outcome == HL_OUT_SUCCESS ? HL_LOG_INFO : HL_LOG_WARN,
               "attempt %d delivery=%" PRId64 " event=%s webhook=%" PRId64
               " status=%d time=%.1fms %s%s%s",
               attempts, a.delivery_id, x->job.event_uid, a.webhook_id, a.status_code,
               (double)a.duration_us / 1000.0, outcome_names[a.outcome], error ? ": " : "",
               error ? error : "");
}

/* Turns a finished transfer into its attempt. */
static void finish_xfer(struct hl_dispatcher *d, struct xfer *x, CURLcode res)
{
    struct hl_attempt a = {0};
    long code = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    char msg[300];
    const char *error = NULL;
    if (res != CURLE_OK) {
        code = 0;
        const char *detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(res);
        if (x->guard.refused[0]) {
            snprintf(msg, sizeof(msg), "%s", x->guard.refused);
        } else if (res == CURLE_OPERATION_TIMEDOUT) {
            snprintf(msg, sizeof(msg), "timeout: no complete answer within %" PRId64 " ms",
                     d->cfg.timeout_ms);
        } else if (res == CURLE_COULDNT_CONNECT) {
            snprintf(msg, sizeof(msg), "connection refused: %s", detail);
        } else if (res == CURLE_COULDNT_RESOLVE_HOST) {
            snprintf(msg, sizeof(msg), "DNS: %s", detail);
        } else if (res == CURLE_SSL_CONNECT_ERROR || res == CURLE_PEER_FAILED_VERIFICATION ||
                   res == CURLE_SSL_CERTPROBLEM || res == CURLE_SSL_CACERT_BADFILE) {
            snprintf(msg, sizeof(msg), "TLS: %s", detail);
        } else {
            snprintf(msg, sizeof(msg), "%s", detail);
        }
        error = msg;
    } else if (code < 200 || code >= 300) {
        snprintf(msg, sizeof(msg), "HTTP %ld", code);
        error = msg;
    }
    a.status_code = (int)code;
    push_result(d, x, &a, error);
}

/* Writes the queued results in one transaction and releases their transfers. */
static void flush(struct hl_dispatcher *d)
{
    if (!d->ndone)
        return;
    int rc = hl_store_record(d->st, d->done, d->ndone, d->cfg.disable_after_ms);
    if (rc)
        hl_error("dispatcher: could not record %zu attempts: %s (their leases will lapse and "
                 "they will be tried again)",
                 d->ndone, hl_strerror(rc));
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; i < d->ndone; i++) {
        d->stats.attempts++;
        if (d->done[i].outcome == HL_OUT_SUCCESS)
            d->stats.succeeded++;
        else
            d->stats.failed++;
    }
    pthread_mutex_unlock(&d->mu);
    for (size_t i = 0; i < d->ndone; i++) {
        free(d->done_errors[i]);
        if (d->done[i].outcome == HL_OUT_RETRY && d->done[i].next_attempt_at &&
            (d->next_due == 0 || d->done[i].next_attempt_at < d->next_due))
            d->next_due = d->done[i].next_attempt_at;
        xfer_put(d, d->done_xfers[i]);
    }
    d->ndone = 0;
}

static void reap(struct hl_dispatcher *d)
{
    CURLMsg *m;
    int left;
    int freed = 0;
    while ((m = curl_multi_info_read(d->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode res = m->data.result;
        curl_multi_remove_handle(d->multi, m->easy_handle);
        struct slot *s = slot_for(d, x->job.webhook_id, 0);
        if (s && s->count >= d->cfg.per_host)
            d->claim_full = 1; /* a saturated webhook has room again */
        if (s && s->count > 0 && --s->count == 0)
            freed = 1;
        d->active[x->idx] = d->active[--d->inflight];
        d->active[x->idx]->idx = x->idx;
        finish_xfer(d, x, res);
    }
    if (freed)
        slots_compact(d);
}

static int has_room(struct hl_dispatcher *d, int64_t webhook_id)
{
    struct slot *s = slot_for(d, webhook_id, 0);
    return !s || s->count < d->cfg.per_host;
}

/* Starts the held-back jobs whose webhook has room now, keeping the others in order. */
static void start_waiting(struct hl_dispatcher *d)
{
    size_t kept = 0;
    for (size_t i = 0; i < d->nwaiting; i++) {
        if (has_room(d, d->waiting[i].webhook_id))
            start(d, &d->waiting[i]);
        else
            d->waiting[kept++] = d->waiting[i];
    }
    d->nwaiting = kept;
}

/* Claims what is due, as far as capacity allows. */
static void claim(struct hl_dispatcher *d)
{
    size_t busy = d->inflight + d->nwaiting;
    if (busy >= d->cfg.max_inflight)
        return;
    size_t room = d->cfg.max_inflight - busy;
    if (room > 128)
        room = 128;
    int64_t skip[256];
    size_t nskip = 0;
    for (size_t i = 0; i < d->nslots && nskip < 256; i++)
        if (d->slots[i].webhook_id && d->slots[i].count >= d->cfg.per_host)
            skip[nskip++] = d->slots[i].webhook_id;
    int64_t now = hl_now_ms();
    d->last_claim_ms = hl_mono_ms();
    struct hl_job *jobs = NULL;
    size_t n = 0;
    int rc = hl_store_claim(d->st, now, now + d->cfg.lease_ms, room, skip, nskip, &jobs, &n);
    if (rc) {
        hl_error("dispatcher: claim failed: %s", hl_strerror(rc));
        d->next_due = now + 1000;
        return;
    }
    d->claim_full = n == room;
    for (size_t i = 0; i < n; i++) {
        if (has_room(d, jobs[i].webhook_id))
            start(d, &jobs[i]);
        else
            d->waiting[d->nwaiting++] = jobs[i];
    }
    free(jobs);
    if (!d->claim_full) {
        int64_t at = 0;
        if (hl_store_next_due(d->st, now, &at) == HL_OK)
            /* Due but not claimed means held back by a saturated webhook: its freed slot (reap)
             * or the sweep claims it, not a busy loop. */
            d->next_due = at > now ? at : 0;
    }
}

static void wakeup(void *arg)
{
    struct hl_dispatcher *d = arg;
    curl_multi_wakeup(d->multi);
}

static int stopping(struct hl_dispatcher *d)
{
    pthread_mutex_lock(&d->mu);
    int s = d->stop;
    pthread_mutex_unlock(&d->mu);
    return s;
}

static void *run(void *arg)
{
    struct hl_dispatcher *d = arg;
    int64_t stop_deadline = 0;
    for (;;) {
        int stop = stopping(d);
        if (stop && !stop_deadline)
            stop_deadline = hl_mono_ms() + d->cfg.timeout_ms + 1000;
        if (stop && (d->inflight == 0 || hl_mono_ms() > stop_deadline))
            break;
        if (!stop) {
            uint64_t seq = hl_store_wake_seq(d->st);
            int64_t now = hl_now_ms();
            int due = d->next_due && d->next_due <= now;
            /* Besides commits and due retries, look once a second: leases lapse (an attempt
             * lost with a node, a claim that outlived a pause) without anyone committing. */
            int sweep = hl_mono_ms() - d->last_claim_ms >= 1000;
            if (seq != d->seen_seq || due || d->claim_full || sweep) {
                d->seen_seq = seq;
                if (due)
                    d->next_due = 0;
                claim(d);
            }
        }
        int running;
        curl_multi_perform(d->multi, &running);
        reap(d);
        flush(d);
        if (d->nwaiting)
            start_waiting(d);
        /* Sleep until a socket event, a commit (curl_multi_wakeup), or the next due retry. */
        long wait_ms = 1000;
        if (d->next_due) {
            int64_t until = d->next_due - hl_now_ms();
            wait_ms = until < 0 ? 0 : until < wait_ms ? (long)until : wait_ms;
        }
        /* More may be due: look again at once if there is room (jobs held back by a webhook's
         * cap count as taken, or a full hold-back queue would spin this loop). */
        if (d->claim_full && d->inflight + d->nwaiting < d->cfg.max_inflight)
            wait_ms = 0;
        if (hl_store_wake_seq(d->st) != d->seen_seq && !stop)
            wait_ms = 0;
        curl_multi_poll(d->multi, NULL, 0, (int)wait_ms, NULL);
    }
    /* Whatever is still in flight is abandoned; its lease lapses and it is tried again. */
    reap(d);
    flush(d);
    return NULL;
}

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

int hl_dispatcher_start(struct hl_store *st, const struct hl_dispatcher_config *c,
                        struct hl_dispatcher **out)
{
    *out = NULL;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, curl_init_once);
    struct hl_dispatcher *d = calloc(1, sizeof(*d));
    if (!d)
        return HL_ENOMEM;
    d->st = st;
    d->cfg = *c;
    d->nslots = 1;
    while (d->nslots < d->cfg.max_inflight * 2)
        d->nslots <<= 1;
    d->slots = calloc(d->nslots, sizeof(*d->slots));
    d->done = calloc(d->cfg.max_inflight + 1, sizeof(*d->done));
    d->done_errors = calloc(d->cfg.max_inflight + 1, sizeof(*d->done_errors));
    d->done_xfers = calloc(d->cfg.max_inflight + 1, sizeof(*d->done_xfers));
    d->active = calloc(d->cfg.max_inflight + 1, sizeof(*d->active));
    d->waiting = calloc(d->cfg.max_inflight + 1, sizeof(*d->waiting));
    d->multi = curl_multi_init();
    if (!d->slots || !d->done || !d->done_errors || !d->done_xfers || !d->active || !d->waiting ||
        !d->multi)
        goto bad;
    uint8_t seed[4];
    hl_random(seed, sizeof(seed));
    d->rng =
        ((uint32_t)seed[0] << 24 | (uint32_t)seed[1] << 16 | (uint32_t)seed[2] << 8 | seed[3]) | 1;
    curl_multi_setopt(d->multi, CURLMOPT_MAX_HOST_CONNECTIONS, d->cfg.per_host);
    curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS, (long)d->cfg.max_inflight);
    pthread_mutex_init(&d->mu, NULL);
    hl_store_release_leases(st);
    d->seen_seq = hl_store_wake_seq(st) - 1; /* claim once at start: pending work resumes */
    hl_store_on_notify(st, wakeup, d);
    if (pthread_create(&d->thread, NULL, run, d) != 0) {
        hl_store_on_notify(st, NULL, NULL);
        pthread_mutex_destroy(&d->mu);
        goto bad;
    }
    *out = d;
    return HL_OK;
bad:
    if (d->multi)
        curl_multi_cleanup(d->multi);
    free(d->slots);
    free(d->done);
    free(d->done_errors);
    free(d->done_xfers);
    free(d->active);
    free(d->waiting);
    free(d);
    return HL_ENOMEM;
}

void hl_dispatcher_stop(struct hl_dispatcher *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->stop = 1;
    pthread_mutex_unlock(&d->mu);
    curl_multi_wakeup(d->multi);
    pthread_join(d->thread, NULL);
    hl_store_on_notify(d->st, NULL, NULL);
    /* Abandoned transfers and held-back jobs: their leases lapse and they are tried again. */
    for (size_t i = 0; i < d->inflight; i++) {
        curl_multi_remove_handle(d->multi, d->active[i]->easy);
        xfer_put(d, d->active[i]);
    }
    for (size_t i = 0; i < d->nwaiting; i++)
        hl_job_clear(&d->waiting[i]);
    while (d->free_list) {
        struct xfer *x = d->free_list;
        d->free_list = x->next_free;
        curl_easy_cleanup(x->easy);
        free(x);
    }
    curl_multi_cleanup(d->multi);
    pthread_mutex_destroy(&d->mu);
    free(d->slots);
    free(d->done);
    free(d->done_errors);
    free(d->done_xfers);
    free(d->active);
    free(d->waiting);
    free(d);
}

void hl_dispatcher_stats(struct hl_dispatcher *d, struct hl_dispatcher_stats *out)
{
    pthread_mutex_lock(&d->mu);
    *out = d->stats;
    out->inflight = d->inflight;
    pthread_mutex_unlock(&d->mu);
}
